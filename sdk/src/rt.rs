//! The guest side of ABI v1, called by the functions `export_plugin!` generates. Kept out
//! of the macro so the generated code stays a few lines of forwarding.

use crate::abi::{pack, Response};
use crate::{emit, Error, Output, Plugin, Record};
use serde::de::DeserializeOwned;
use serde_json::Value;

pub fn alloc(len: i32) -> i32 {
    let buf = vec![0u8; len.max(0) as usize].into_boxed_slice();
    Box::into_raw(buf) as *mut u8 as usize as i32
}

/// # Safety
/// `ptr` and `len` must come from `alloc` or from a response buffer, and be freed once.
pub unsafe fn free(ptr: i32, len: i32) {
    let slice = std::ptr::slice_from_raw_parts_mut(ptr as usize as *mut u8, len.max(0) as usize);
    drop(unsafe { Box::from_raw(slice) });
}

/// # Safety
/// `ptr` and `len` must describe a live buffer the host wrote.
unsafe fn input<'a>(ptr: i32, len: i32) -> &'a [u8] {
    if len <= 0 {
        return &[];
    }
    unsafe { std::slice::from_raw_parts(ptr as usize as *const u8, len as usize) }
}

/// Decodes the YAML `config:` block. An absent block arrives as nil; we then try an empty
/// map first so `#[serde(default)]` structs work, and nil second so `()` and `Option` do.
pub fn decode_config<C: DeserializeOwned>(bytes: &[u8]) -> Result<C, String> {
    let value: Value = if bytes.is_empty() {
        Value::Null
    } else {
        rmp_serde::from_slice(bytes).map_err(|e| format!("config is not valid MessagePack: {e}"))?
    };
    if value.is_null() {
        if let Ok(c) = serde_json::from_value(Value::Object(Default::default())) {
            return Ok(c);
        }
    }
    serde_json::from_value(value).map_err(|e| format!("invalid config: {e}"))
}

pub fn decode_batch(bytes: &[u8]) -> Result<Vec<Record>, String> {
    rmp_serde::from_slice(bytes)
        .map_err(|e| format!("input batch is not a MessagePack array of maps: {e}"))
}

/// Runs one call and gathers its records and side outputs into a response.
pub fn respond_with(out: Output, result: Result<(), Error>) -> Response {
    let emitted = emit::take();
    let mut response = Response {
        metrics: emitted.metrics,
        alerts: emitted.alerts,
        logs: emitted.logs,
        ..Response::default()
    };
    match result {
        Ok(()) => response.records = out.records.into_iter().map(Record::into_map).collect(),
        Err(e) => response.error = Some(e.0),
    }
    response
}

fn error(message: String) -> Response {
    emit::take();
    Response {
        error: Some(message),
        ..Response::default()
    }
}

fn encode(response: &Response) -> i64 {
    if response == &Response::default() {
        return 0;
    }
    let bytes = rmp_serde::to_vec_named(response).expect("responses always encode");
    let len = bytes.len() as u32;
    let ptr = Box::into_raw(bytes.into_boxed_slice()) as *mut u8 as usize as u32;
    pack(ptr, len)
}

pub fn init_response<P: Plugin>(slot: &mut Option<P>, config: &[u8]) -> Response {
    let outcome = decode_config::<P::Config>(config).and_then(|c| P::new(c).map_err(|e| e.0));
    match outcome {
        Ok(plugin) => {
            *slot = Some(plugin);
            respond_with(Output::default(), Ok(()))
        }
        Err(message) => error(message),
    }
}

pub fn process_response<P: Plugin>(slot: &mut Option<P>, batch: &[u8]) -> Response {
    let Some(plugin) = slot.as_mut() else {
        return error("process called before a successful init".into());
    };
    match decode_batch(batch) {
        Ok(records) => {
            let mut out = Output::default();
            let result = plugin.process_batch(records, &mut out);
            respond_with(out, result)
        }
        Err(message) => error(message),
    }
}

pub fn tick_response<P: Plugin>(slot: &mut Option<P>, now_ns: i64) -> Response {
    let Some(plugin) = slot.as_mut() else {
        return error("tick called before a successful init".into());
    };
    let mut out = Output::default();
    let result = plugin.tick(now_ns, &mut out);
    respond_with(out, result)
}

/// # Safety
/// Called only by the exported `sluice_init` with the host's buffer.
pub unsafe fn init<P: Plugin>(slot: &mut Option<P>, ptr: i32, len: i32) -> i64 {
    encode(&init_response(slot, unsafe { input(ptr, len) }))
}

/// # Safety
/// Called only by the exported `sluice_process` with the host's buffer.
pub unsafe fn process<P: Plugin>(slot: &mut Option<P>, ptr: i32, len: i32) -> i64 {
    encode(&process_response(slot, unsafe { input(ptr, len) }))
}

pub fn tick<P: Plugin>(slot: &mut Option<P>, now_ns: i64) -> i64 {
    encode(&tick_response(slot, now_ns))
}

pub fn snapshot<P: Plugin>(slot: &Option<P>) -> i64 {
    match slot.as_ref().and_then(Plugin::snapshot) {
        None => 0,
        Some(state) => {
            let len = state.len() as u32;
            let ptr = Box::into_raw(state.into_boxed_slice()) as *mut u8 as usize as u32;
            pack(ptr, len)
        }
    }
}

/// # Safety
/// Called only by the exported `sluice_restore` with the host's buffer.
pub unsafe fn restore<P: Plugin>(slot: &mut Option<P>, ptr: i32, len: i32) -> i64 {
    let state = unsafe { input(ptr, len) };
    let response = match slot.as_mut() {
        None => error("restore called before a successful init".into()),
        Some(plugin) => respond_with(Output::default(), plugin.restore(state)),
    };
    encode(&response)
}

/// Exports ABI v1 for a type that implements [`Plugin`](crate::Plugin). Emits nothing
/// outside `wasm32`, so the same crate builds and tests natively.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use ::std::cell::RefCell;
            ::std::thread_local! {
                static PLUGIN: RefCell<Option<$plugin>> = const { RefCell::new(None) };
            }
            #[no_mangle]
            pub extern "C" fn sluice_abi_version() -> i32 {
                $crate::abi::ABI_VERSION
            }
            #[no_mangle]
            pub extern "C" fn sluice_alloc(len: i32) -> i32 {
                $crate::rt::alloc(len)
            }
            #[no_mangle]
            pub unsafe extern "C" fn sluice_free(ptr: i32, len: i32) {
                unsafe { $crate::rt::free(ptr, len) }
            }
            #[no_mangle]
            pub unsafe extern "C" fn sluice_init(ptr: i32, len: i32) -> i64 {
                PLUGIN.with(|p| unsafe { $crate::rt::init(&mut p.borrow_mut(), ptr, len) })
            }
            #[no_mangle]
            pub unsafe extern "C" fn sluice_process(ptr: i32, len: i32) -> i64 {
                PLUGIN.with(|p| unsafe { $crate::rt::process(&mut p.borrow_mut(), ptr, len) })
            }
            #[no_mangle]
            pub extern "C" fn sluice_tick(now_ns: i64) -> i64 {
                PLUGIN.with(|p| $crate::rt::tick(&mut p.borrow_mut(), now_ns))
            }
            #[no_mangle]
            pub extern "C" fn sluice_snapshot() -> i64 {
                PLUGIN.with(|p| $crate::rt::snapshot(&p.borrow()))
            }
            #[no_mangle]
            pub unsafe extern "C" fn sluice_restore(ptr: i32, len: i32) -> i64 {
                PLUGIN.with(|p| unsafe { $crate::rt::restore(&mut p.borrow_mut(), ptr, len) })
            }
        };
    };
}
