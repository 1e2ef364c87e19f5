#[forge::model]
pub fn not_a_type() {}

#[forge::model(table = "roles")]
pub enum Role {
    Member,
}

#[forge::query]
pub struct NotAFunction;

fn main() {}
