//! The `fastmcp` binary. `Server::run_forever()` owns the process, so there is no
//! `#[tokio::main]` here.

fn main() {
    std::process::exit(fastmcp::cli::run());
}
