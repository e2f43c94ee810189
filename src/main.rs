//! The `leadguard` command: flags are parsed here and handed to `cli`.

mod cli;

/// mimalloc: the engine allocates and frees many small strings per event; glibc's allocator
/// spent a third of replay time consolidating free lists (see benches/RESULTS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
