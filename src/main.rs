//! The `crius` binary: a thin entry point over [`crius::cli`].

fn main() -> std::process::ExitCode {
    crius::cli::main()
}
