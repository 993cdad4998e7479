//! Which contract the SDK builds against: `sandgate:strategy@0.2.0` (wit/strategy.wit) unless
//! `SANDGATE_WIT=0.1.0` (wit/0.1.0/strategy.wit), which `make strategies` uses to build the
//! bundled strategies a second time as 0.1.0 components, the ones older servers ran, so the
//! tests show they keep working.

fn main() {
    println!("cargo:rerun-if-env-changed=SANDGATE_WIT");
    println!("cargo::rustc-check-cfg=cfg(sandgate_wit_0_1)");
    match std::env::var("SANDGATE_WIT").as_deref() {
        Ok("0.1.0") => println!("cargo:rustc-cfg=sandgate_wit_0_1"),
        Ok("0.2.0") | Ok("") | Err(_) => {}
        Ok(other) => panic!("SANDGATE_WIT={other}: the SDK builds against 0.2.0 (the default) or 0.1.0"),
    }
}
