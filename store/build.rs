// sqlx::migrate! embeds the migrations at compile time but does not notice new files on its own.
fn main() {
    println!("cargo:rerun-if-changed=../schemas/migrations");
}
