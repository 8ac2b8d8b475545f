//! `lockstep`: the command-line runner of `lockstep::cli` with the built-in
//! scenarios. `lockstep --help` lists the verbs; the README shows them at
//! work.

fn main() -> std::process::ExitCode {
    lockstep::cli::main(sim_scenarios::all())
}
