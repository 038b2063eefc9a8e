//! The registry behind every call: core's built-ins, the shipped plugins linked in (no library
//! to find), and any plugin library found on `BOOTFLOW_PLUGIN_PATH`.

use std::sync::OnceLock;

use bootflow_core::Registry;
use bootflow_core::plugin::{discover, search_path};

/// The process-wide registry, built on first use.
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut reg = Registry::with_builtins();
        for register in [
            bootflow_realnvp::register,
            bootflow_flows::register,
            bootflow_manywell::register,
            bootflow_phi4::register,
            bootflow_hmc::register,
        ] {
            // The shipped plugins have distinct names (the CLI's tests load them side by side).
            register(&mut reg).expect("shipped plugins register without clashes");
        }
        // A user's library whose names clash with these is skipped, as the CLI skips clashes.
        discover(&search_path(&[])).register_all(&mut reg);
        reg
    })
}
