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

fn main() {}
