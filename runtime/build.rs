//! Embeds the bundled `local` strategy, built for wasm32-wasip2 by `make strategies`
//! (`cargo build --profile strategy --target wasm32-wasip2 -p strategy-local`).
//! Set SANDGATE_LOCAL_WASM to use another file.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=SANDGATE_LOCAL_WASM");
    let path = match std::env::var_os("SANDGATE_LOCAL_WASM") {
        Some(p) => PathBuf::from(p),
        None => {
            // OUT_DIR is <target>/<profile>/build/<pkg>/out: walk up to <target>.
            let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
            let target = out.ancestors().nth(4).expect("target dir").to_path_buf();
            target.join("wasm32-wasip2/strategy/strategy_local.wasm")
        }
    };
    println!("cargo:rerun-if-changed={}", path.display());
    if !path.exists() {
        panic!(
            "\n\nThe bundled `local` strategy is not built: {} is missing.\n\
             Run `make strategies` (or `make run` / `make test`, which do it) first.\n\n",
            path.display()
        );
    }
    println!("cargo:rustc-env=SANDGATE_LOCAL_WASM_PATH={}", path.display());
}
