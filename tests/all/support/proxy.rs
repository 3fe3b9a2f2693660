//! A TCP proxy in front of a real peer that can go silent: connections it already carries stop
//! forwarding in both directions while their sockets stay open, as a peer behind a dead route or
//! a hung broker looks to a client. New connections are forwarded again. It stands in for a
//! network fault, which cannot be produced on loopback otherwise; the peer behind it is real.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub struct SilentProxy {
    pub port: u16,
    accepted: Arc<AtomicUsize>,
    live: Arc<Mutex<Vec<Arc<AtomicBool>>>>,
}

impl SilentProxy {
    /// Forwards every connection to `127.0.0.1:upstream`.
    pub fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy listener");
        let port = listener.local_addr().expect("proxy address").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let live: Arc<Mutex<Vec<Arc<AtomicBool>>>> = Arc::default();
        let (acc, lv) = (accepted.clone(), live.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                acc.fetch_add(1, Ordering::SeqCst);
                let silent = Arc::new(AtomicBool::new(false));
                lv.lock().unwrap().push(silent.clone());
                for (from, to) in [(&client, &server), (&server, &client)] {
                    let (mut from, mut to) = (from.try_clone().unwrap(), to.try_clone().unwrap());
                    let silent = silent.clone();
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16 * 1024];
                        // A silent connection swallows what it reads: the sender's writes
                        // succeed and nothing ever answers.
                        while let Ok(n @ 1..) = from.read(&mut buf) {
                            if !silent.load(Ordering::SeqCst) && to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        if !silent.load(Ordering::SeqCst) {
                            let _ = to.shutdown(Shutdown::Write);
                        }
                    });
                }
            }
        });
        Self { port, accepted, live }
    }

    /// Every connection carried so far goes silent (and stays open).
    pub fn silence_existing(&self) {
        for c in self.live.lock().unwrap().iter() {
            c.store(true, Ordering::SeqCst);
        }
    }

    /// Connections accepted since the start.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}
