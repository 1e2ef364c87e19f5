// Rules that need only the handler run at compile time, with forge check's codes.

pub struct QueryContext;
pub struct MutationContext;
pub type Result<T> = std::result::Result<T, ()>;

#[forge::query]
pub fn not_async(_ctx: &QueryContext) -> Result<i32> {
    Ok(1)
}

#[forge::query]
pub async fn wrong_context(_ctx: &MutationContext) -> Result<i32> {
    Ok(1)
}

#[forge::query(public)]
pub async fn too_wide(_ctx: &QueryContext, count: u64) -> Result<u64> {
    Ok(count)
}

// A stand-in for sqlx: the rule reads the call's shape, not its types.
mod sqlx {
    pub struct Query;
    impl Query {
        pub fn bind<T>(self, _value: T) -> Query {
            Query
        }
    }
    pub fn query(_sql: &str) -> Query {
        Query
    }
}

#[forge::query]
pub async fn everyones_items(_ctx: &QueryContext, owner: i64) -> Result<()> {
    let _ = sqlx::query("SELECT * FROM items WHERE owner_id = $1").bind(owner);
    let _ = sqlx::query("SELECT * FROM items");
    Ok(())
}

fn main() {}
