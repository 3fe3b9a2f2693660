//! The `types.buffer` resource: payload bytes that stay in host memory until an operator reads
//! them. Buffers share one reference-counted allocation, so routing an item to several
//! operators (filter and branch consume their argument) costs a handle, not a copy. The WIT
//! resource is implemented over these functions in `bindings.rs`, which maps it to
//! [`Payload`].

use std::sync::Arc;

use wasmtime::component::{Resource, ResourceTable};

/// The host object behind a `buffer` handle.
#[derive(Debug, Clone)]
pub struct Payload(pub Arc<[u8]>);

/// `buffer.read`: a copy of the bytes into the guest (the only copy a payload ever needs).
pub fn read(table: &ResourceTable, handle: &Resource<Payload>) -> wasmtime::Result<Vec<u8>> {
    Ok(table.get(handle)?.0.to_vec())
}

/// The guest dropped its handle: release the host's reference to the bytes.
pub fn drop(table: &mut ResourceTable, handle: Resource<Payload>) -> wasmtime::Result<()> {
    table.delete(handle)?;
    Ok(())
}

/// Hands `bytes` to the guest as a new buffer handle.
pub fn new_buffer(table: &mut ResourceTable, bytes: Arc<[u8]>) -> wasmtime::Result<Resource<Payload>> {
    Ok(table.push(Payload(bytes))?)
}

/// Takes back the bytes of a handle the guest returned, releasing the handle.
pub fn take_buffer(table: &mut ResourceTable, handle: Resource<Payload>) -> wasmtime::Result<Arc<[u8]>> {
    Ok(table.delete(handle)?.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_copies_and_drop_releases() {
        let mut t = ResourceTable::new();
        let bytes: Arc<[u8]> = Arc::from(&b"{\"a\":1}"[..]);
        let h = new_buffer(&mut t, bytes.clone()).unwrap();
        assert_eq!(read(&t, &h).unwrap(), b"{\"a\":1}");
        assert_eq!(Arc::strong_count(&bytes), 2, "the table shares the bytes, no copy");
        drop(&mut t, h).unwrap();
        assert_eq!(Arc::strong_count(&bytes), 1, "drop releases the host bytes");
    }

    #[test]
    fn take_returns_the_same_allocation() {
        let mut t = ResourceTable::new();
        let bytes: Arc<[u8]> = Arc::from(&b"xyz"[..]);
        let h = new_buffer(&mut t, bytes.clone()).unwrap();
        let back = take_buffer(&mut t, h).unwrap();
        assert!(Arc::ptr_eq(&bytes, &back));
        assert!(t.is_empty());
    }
}
