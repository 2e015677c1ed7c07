//! The `fastmcp` binary. `Server::run_forever()` owns the process, so there is no
//! `#[tokio::main]` here.

// The request path allocates many small, short-lived objects (JSON values, headers);
// mimalloc handles that pattern markedly better than glibc malloc across worker threads.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(fastmcp::cli::run());
}
