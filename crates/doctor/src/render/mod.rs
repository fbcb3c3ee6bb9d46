//! Report renderers: terminal text, JSON, Markdown, self-contained HTML.

pub mod html;
pub mod json;
pub mod markdown;
pub mod text;
mod waterfall;

pub use waterfall::{Bar, Waterfall};

#[cfg(test)]
mod tests;
