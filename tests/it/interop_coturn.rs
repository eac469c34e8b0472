//! coturn's command line clients against tern.
