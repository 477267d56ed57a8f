pub mod ai; pub mod blob; pub mod protocol;
