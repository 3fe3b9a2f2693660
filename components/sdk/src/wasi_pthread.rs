//! Single-threaded `pthread` functions (mutexes, condition variables, thread creation), for a
//! WASI libc that has none.
//!
//! Current wasi-libc (the one Rust's own `wasm32-wasip2` target links) provides these as stubs
//! on targets without threads, and crates rely on it: `parking_lot_core` 0.10 uses pthread
//! mutexes and condition variables on every WASI target (the platform's schema-registry
//! `filter` operator reaches it through `jsonschema` → `parking_lot`). The offline recipe of
//! shared/TOOLCHAIN.md links against Debian's older wasi-libc (2022), which has no pthread
//! functions at all, so such a module fails to link (`undefined symbol: pthread_mutex_lock`).
//! The `std` of the Rust that recipe uses creates threads through `pthread_create` on WASI
//! too, so any module that asks for a thread (the platform's `format` operator, through
//! `image` → `jpeg-decoder` → `rayon`) fails to link the same way.
//!
//! Compiled only with `--cfg wasm_graph_sdk_pthread_stubs`, which scripts/build-components.sh
//! and scripts/build-platform-operators.sh pass when the libc they link lacks them
//! (`wasm_toolchain_pthread_standins` in scripts/wasm-toolchain.sh; never with a libc that has
//! them, whose definitions would clash). One thread means a mutex is never contended: locking
//! succeeds, signalling wakes nobody, a timed wait times out, an untimed wait (which nothing
//! could ever end) traps instead of hanging, and no thread can be created.

use core::ffi::c_int;

/// `ETIMEDOUT` of wasi-libc.
const ETIMEDOUT: c_int = 73;
/// `ENOTSUP` (= `EOPNOTSUPP`) of wasi-libc.
const ENOTSUP: c_int = 58;
/// `ESRCH` of wasi-libc.
const ESRCH: c_int = 71;

macro_rules! succeed {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            #[doc = concat!("`", stringify!($name), "`: succeeds (one thread: nothing to wait for or wake).")]
            #[unsafe(no_mangle)]
            pub extern "C" fn $name($($arg: $ty),*) -> c_int {
                $(let _ = $arg;)*
                0
            }
        )*
    };
}

succeed! {
    pthread_mutex_init(mutex: *mut u8, attr: *const u8);
    pthread_mutex_destroy(mutex: *mut u8);
    pthread_mutex_lock(mutex: *mut u8);
    pthread_mutex_trylock(mutex: *mut u8);
    pthread_mutex_unlock(mutex: *mut u8);
    pthread_mutexattr_init(attr: *mut u8);
    pthread_mutexattr_destroy(attr: *mut u8);
    pthread_mutexattr_settype(attr: *mut u8, kind: c_int);
    pthread_cond_init(cond: *mut u8, attr: *const u8);
    pthread_cond_destroy(cond: *mut u8);
    pthread_cond_signal(cond: *mut u8);
    pthread_cond_broadcast(cond: *mut u8);
    pthread_condattr_init(attr: *mut u8);
    pthread_condattr_destroy(attr: *mut u8);
    pthread_condattr_setclock(attr: *mut u8, clock: *const u8);
    pthread_attr_init(attr: *mut u8);
    pthread_attr_destroy(attr: *mut u8);
    pthread_attr_setstacksize(attr: *mut u8, size: usize);
    pthread_detach(thread: *mut u8);
}

/// `pthread_create`: fails with `ENOTSUP`, which `std::thread::spawn` reports as
/// `io::ErrorKind::Unsupported`: what the Rust the platform's samples pin (1.87, whose
/// `wasm32-wasip2` `std` has no threads at all) answers every module. Crates decide by that
/// kind: `rayon` then runs its pool on the calling thread, where any other error makes it panic.
#[unsafe(no_mangle)]
pub extern "C" fn pthread_create(thread: *mut u8, attr: *const u8, start: *const u8, arg: *mut u8) -> c_int {
    let _ = (thread, attr, start, arg);
    ENOTSUP
}

/// `pthread_join`: fails with `ESRCH` (no such thread): none was ever created.
#[unsafe(no_mangle)]
pub extern "C" fn pthread_join(thread: *mut u8, result: *mut *mut u8) -> c_int {
    let _ = (thread, result);
    ESRCH
}

/// `pthread_cond_timedwait`: times out at once (no other thread could signal).
#[unsafe(no_mangle)]
pub extern "C" fn pthread_cond_timedwait(cond: *mut u8, mutex: *mut u8, abstime: *const u8) -> c_int {
    let _ = (cond, mutex, abstime);
    ETIMEDOUT
}

/// `pthread_cond_wait`: traps. With one thread nothing can ever signal the condition, so the
/// wait is a deadlock; a trap says so instead of hanging the operator.
#[unsafe(no_mangle)]
pub extern "C" fn pthread_cond_wait(cond: *mut u8, mutex: *mut u8) -> c_int {
    let _ = (cond, mutex);
    core::arch::wasm32::unreachable()
}
