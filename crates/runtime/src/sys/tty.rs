//! Pseudo-terminal ioctls and terminal modes.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

/// Unlock the slave side of a pty master (TIOCSPTLCK 0).
pub fn unlock_pt(master: BorrowedFd<'_>) -> nix::Result<()> {
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one c_int from the pointer, which lives across the call.
    let rc = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) };
    Errno::result(rc).map(drop)
}

/// Open the slave of a pty master without a path lookup (TIOCGPTPEER).
pub fn open_peer(master: BorrowedFd<'_>) -> nix::Result<OwnedFd> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes the open flags by value and returns a new descriptor.
    let fd = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) };
    let fd = Errno::result(fd)?;
    // SAFETY: the kernel just returned `fd` as a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Number of the pts device behind a master (TIOCGPTN).
pub fn pty_number(master: BorrowedFd<'_>) -> nix::Result<u32> {
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one c_uint to the pointer, which lives across the call.
    let rc = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) };
    Errno::result(rc).map(|_| n)
}

/// Set the window size of a terminal.
pub fn set_winsize(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> nix::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which lives across the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    Errno::result(rc).map(drop)
}

/// The window size of a terminal, if it is one.
pub fn winsize(fd: BorrowedFd<'_>) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize to the pointer, which lives across the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (rc == 0).then_some((ws.ws_row, ws.ws_col))
}

/// Make `tty` the controlling terminal of this (new) session.
pub fn set_controlling(tty: BorrowedFd<'_>) -> nix::Result<()> {
    // SAFETY: TIOCSCTTY takes an int argument by value and touches no memory.
    let rc = unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSCTTY, 0) };
    Errno::result(rc).map(drop)
}

/// Put a terminal in raw mode; returns the previous settings to restore.
pub fn make_raw(fd: BorrowedFd<'_>) -> nix::Result<nix::sys::termios::Termios> {
    use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
    let saved = tcgetattr(fd)?;
    let mut raw = saved.clone();
    cfmakeraw(&mut raw);
    tcsetattr(fd, SetArg::TCSANOW, &raw)?;
    Ok(saved)
}

/// Restore terminal settings saved by [`make_raw`].
pub fn restore(fd: BorrowedFd<'_>, saved: &nix::sys::termios::Termios) -> nix::Result<()> {
    nix::sys::termios::tcsetattr(fd, nix::sys::termios::SetArg::TCSANOW, saved)
}

/// Duplicate `fd` onto stdin, stdout and stderr.
pub fn dup_to_stdio(fd: impl AsFd) -> nix::Result<()> {
    for target in 0..3 {
        // SAFETY: dup2 onto 0, 1 and 2 replaces this process's stdio on purpose; nothing in
        // this process holds those numbers as owned descriptors.
        let rc = unsafe { libc::dup2(fd.as_fd().as_raw_fd(), target) };
        Errno::result(rc)?;
    }
    Ok(())
}
