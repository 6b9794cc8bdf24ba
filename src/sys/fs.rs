//! Opening a file the way the grader opens a student's: never through a final symbolic
//! link, and never waiting (a FIFO or a terminal opened for reading would block). The
//! flags are POSIX, the same on Linux and macOS.

use std::fs::File;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// How opening went.
pub enum Opened {
    File(File),
    Missing,
    /// The last component is a symbolic link (O_NOFOLLOW refused it).
    Link,
    Failed(io::Error),
}

/// Opens `p` read-only with O_NOFOLLOW | O_NONBLOCK | O_NOCTTY.
pub fn open_no_follow(p: &Path) -> Opened {
    match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(p)
    {
        Ok(f) => Opened::File(f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Opened::Missing,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Opened::Link,
        Err(e) => Opened::Failed(e),
    }
}

/// Makes a FIFO at `p` (for tests of what must not wait on one).
pub fn make_fifo(p: &Path) -> io::Result<()> {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `c` is a NUL-terminated path that lives across the call.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o644) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
