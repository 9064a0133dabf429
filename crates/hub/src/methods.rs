//! The hub methods clients may invoke: one table, filled at startup by the modules that
//! implement methods ([`crate::calls::register`], [`crate::graph::register`]; see
//! [`crate::hub_methods`]) and consulted by [`crate::hub::Hub::invoke`]. Names match
//! case-insensitively, as ASP.NET Core matches them.
//!
//! Generic over the hub and connection types ([`crate::hub::HubMethods`] is the table of this
//! crate) so that this module names neither, and the hub names no method module.

use std::fmt;

use serde_json::Value;

/// Runs an invocation `target(arguments)` on hub `H` for connection `C`: `Ok(None)` is a void
/// completion, `Ok(Some(v))` a result, `Err(text)` a completion error.
pub type Handler<H, C> = fn(&H, &C, &str, &[Value]) -> Result<Option<Value>, String>;

/// One hub method.
pub struct Method<H, C> {
    /// The name as documented (`acceptCall`).
    pub name: &'static str,
    /// What runs it.
    pub handler: Handler<H, C>,
}

/// The table (see the module docs).
pub struct MethodTable<H, C> {
    methods: Vec<Method<H, C>>,
}

impl<H, C> Default for MethodTable<H, C> {
    fn default() -> Self {
        Self {
            methods: Vec::new(),
        }
    }
}

impl<H, C> fmt::Debug for MethodTable<H, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl<H, C> MethodTable<H, C> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a method.
    ///
    /// # Panics
    /// When the name is taken already (case-insensitively): two modules claiming one method is
    /// a bug to find at startup, not at the first invocation.
    pub fn register(&mut self, name: &'static str, handler: Handler<H, C>) {
        assert!(
            self.get(name).is_none(),
            "hub method '{name}' is registered twice"
        );
        self.methods.push(Method { name, handler });
    }

    /// The method `target` names (case-insensitive).
    pub fn get(&self, target: &str) -> Option<&Method<H, C>> {
        self.methods
            .iter()
            .find(|m| m.name.eq_ignore_ascii_case(target))
    }

    /// The names, in registration order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.methods.iter().map(|m| m.name)
    }

    /// How many methods there are.
    pub fn len(&self) -> usize {
        self.methods.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.methods.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(_: &(), _: &(), target: &str, _: &[Value]) -> Result<Option<Value>, String> {
        Ok(Some(Value::String(target.to_owned())))
    }

    #[test]
    fn names_match_case_insensitively() {
        let mut table = MethodTable::<(), ()>::new();
        table.register("acceptCall", one);
        let m = table.get("ACCEPTCALL").expect("found");
        assert_eq!(m.name, "acceptCall");
        assert_eq!(
            (m.handler)(&(), &(), "ACCEPTCALL", &[]),
            Ok(Some("ACCEPTCALL".into()))
        );
        assert!(table.get("dial").is_none());
        assert_eq!(table.names().collect::<Vec<_>>(), ["acceptCall"]);
    }

    #[test]
    #[should_panic(expected = "registered twice")]
    fn a_name_is_registered_once() {
        let mut table = MethodTable::<(), ()>::new();
        table.register("hangUp", one);
        table.register("hangup", one);
    }
}
