pub mod ai; pub mod protocol;
