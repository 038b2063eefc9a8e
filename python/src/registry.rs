//! The registry behind every call: core's built-ins, the shipped plugins linked in (no library
//! to find, but used through their C tables as the CLI uses the loaded libraries, so both give
//! the same bits), and any plugin library found on `BOOTFLOW_PLUGIN_PATH`.

use std::sync::OnceLock;

use bootflow_core::Registry;
use bootflow_core::plugin::{discover, linked, search_path};

/// The process-wide registry, built on first use.
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut reg = Registry::with_builtins();
        for header in [
            &bootflow_realnvp::BOOTFLOW_PLUGIN_HEADER,
            &bootflow_flows::BOOTFLOW_PLUGIN_HEADER,
            &bootflow_manywell::BOOTFLOW_PLUGIN_HEADER,
            &bootflow_phi4::BOOTFLOW_PLUGIN_HEADER,
            &bootflow_hmc::BOOTFLOW_PLUGIN_HEADER,
        ] {
            // The shipped plugins are built with this core and have distinct names (the CLI's
            // tests load them side by side).
            let plugin = linked(header).expect("a shipped plugin has this build's ABI");
            plugin.register_into(&mut reg).expect("shipped plugins register without clashes");
        }
        // A user's library whose names clash with these is skipped, as the CLI skips clashes.
        discover(&search_path(&[])).register_all(&mut reg);
        reg
    })
}
