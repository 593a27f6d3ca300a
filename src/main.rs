use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    authgate::cli::run(std::env::args_os()).await
}
