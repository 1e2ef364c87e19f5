#[forge::query]
pub fn not_async() {}

#[forge::model]
pub fn not_a_type() {}

#[forge::model(table = "roles")]
pub enum Role {
    Member,
}

fn main() {}
