//! Mesa's software Vulkan driver (lavapipe) prints "error: XDG_RUNTIME_DIR is
//! invalid or not set in the environment." on stderr whenever it is loaded
//! outside a desktop session (servers, containers, CI), even though nothing is
//! wrong. plugen promises one line per error, so while adapters are opened,
//! stderr goes through a pipe and that line is dropped; everything else is
//! passed on unchanged.

/// Runs `f` with the driver's harmless chatter filtered out of stderr.
///
/// Calls are serialised (two at once would save each other's pipe as "the"
/// stderr). The filtered text is passed on when the pipe closes; should a
/// child process started meanwhile by another thread keep it open, plugen
/// stops waiting after two seconds rather than hang.
#[cfg(unix)]
pub fn filtered<T>(f: impl FnOnce() -> T) -> T {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    use std::sync::Mutex;
    use std::time::Duration;

    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: plain POSIX calls on file descriptors this function owns; fd 2
    // is restored before returning, whatever `f` did.
    unsafe {
        let saved = libc::dup(2);
        if saved < 0 {
            return f();
        }
        let mut fds = [0; 2];
        if libc::pipe(fds.as_mut_ptr()) != 0 {
            libc::close(saved);
            return f();
        }
        libc::dup2(fds[1], 2);
        libc::close(fds[1]);
        let mut reader = std::fs::File::from_raw_fd(fds[0]);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = reader.read_to_string(&mut text);
            let _ = tx.send(text);
        });
        let out = f();
        // Restoring fd 2 closes the pipe's last write end: the reader sees EOF.
        libc::dup2(saved, 2);
        libc::close(saved);
        let text = rx.recv_timeout(Duration::from_secs(2)).unwrap_or_default();
        for line in text.lines().filter(|l| !is_chatter(l)) {
            eprintln!("{line}");
        }
        out
    }
}

/// Elsewhere the drivers do not print it: run `f` as it is.
#[cfg(not(unix))]
pub fn filtered<T>(f: impl FnOnce() -> T) -> T {
    f()
}

#[cfg(unix)]
fn is_chatter(line: &str) -> bool {
    line.contains("XDG_RUNTIME_DIR is invalid or not set")
}
