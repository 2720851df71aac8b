mod blocking_pool;
mod join_handle;
mod park;
mod pipe;
mod post;
mod reactor_turn;
mod real_wake;
mod schedule;

/// A loom `Notify` standing in for the reactor's eventfd: a notify before the wait is kept as
/// a permit, exactly like an eventfd counter.
pub(crate) struct Eventfd(pub(crate) loom::sync::Notify);

impl crate::scheduler::park::Notify for Eventfd {
    fn notify(&self) {
        self.0.notify();
    }
}

impl Eventfd {
    pub(crate) fn new() -> Self {
        Eventfd(loom::sync::Notify::new())
    }

    /// The reactor blocking in `io_uring_enter` until the eventfd read completes.
    pub(crate) fn wait(&self) {
        self.0.wait();
    }
}

/// Runs each ignored mutant model in a child process and checks that loom rejects it: a model
/// that passes a broken protocol would prove nothing.
#[test]
fn mutants_are_caught() {
    let exe = std::env::current_exe().unwrap();
    for mutant in [
        "models::park::mutant_drain_before_unpark_loses_a_wake",
        "models::park::mutant_plain_store_of_awake_loses_a_wake",
        "models::reactor_turn::mutant_closed_flag_beside_the_word_strands_a_post",
    ] {
        let output = std::process::Command::new(&exe)
            .args([
                "--exact",
                mutant,
                "--ignored",
                "--test-threads=1",
                "--nocapture",
            ])
            .output()
            .unwrap();
        let stderr = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            !output.status.success(),
            "loom accepted the broken protocol of {mutant}"
        );
        let expected = if mutant.contains("strands") {
            "stranded"
        } else {
            "deadlock"
        };
        assert!(
            stderr.contains(expected),
            "{mutant} failed, but not with the {expected} it models:\n{stderr}"
        );
    }
}
