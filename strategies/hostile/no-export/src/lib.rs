//! A hostile component for the isolation tests: a well-formed component whose only export is
//! `hostile:no-export/greeter`, not `sandgate:strategy/authenticator`. Uploading it as a
//! strategy must fail cleanly.

wit_bindgen::generate!({ world: "greeter-world", path: "wit" });

struct Greeter;

impl exports::hostile::no_export::greeter::Guest for Greeter {
    fn hello() -> String {
        "hello, I am not a strategy".into()
    }
}

export!(Greeter);
