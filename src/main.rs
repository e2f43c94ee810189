//! The `leadguard` command: flags are parsed here and handed to `cli`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
