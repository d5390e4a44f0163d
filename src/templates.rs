//! The minijinja templates shipped in `templates/`, embedded at build time.

use std::sync::OnceLock;

use minijinja::Environment;
use serde::Serialize;

const TEMPLATES: &[(&str, &str)] = &[
    (
        "user-data/node.sh",
        include_str!("../templates/user-data/node.sh.j2"),
    ),
    (
        "node/etcd.yaml",
        include_str!("../templates/node/etcd.yaml.j2"),
    ),
];

#[derive(Debug, thiserror::Error)]
#[error("cannot render template {name}")]
pub struct TemplateError {
    pub name: String,
    #[source]
    pub source: minijinja::Error,
}

fn environment() -> &'static Environment<'static> {
    static ENVIRONMENT: OnceLock<Environment<'static>> = OnceLock::new();
    ENVIRONMENT.get_or_init(|| {
        let mut environment = Environment::new();
        // Every variable a template names must be given: a typo fails loudly, not as "".
        environment.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        environment.set_keep_trailing_newline(true);
        for (name, source) in TEMPLATES {
            // A template that does not parse is left out; rendering it then fails with an
            // error naming it, and `all_templates_parse` below catches it before release.
            let _ = environment.add_template(name, source);
        }
        environment
    })
}

/// Renders the embedded template `name` with `context`.
pub fn render(name: &str, context: impl Serialize) -> Result<String, TemplateError> {
    let wrap = |source| TemplateError {
        name: name.to_string(),
        source,
    };
    environment()
        .get_template(name)
        .map_err(wrap)?
        .render(context)
        .map_err(wrap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_variables_are_errors() {
        let error = render(
            "user-data/node.sh",
            minijinja::context! { role => "worker" },
        )
        .unwrap_err();
        assert_eq!(error.name, "user-data/node.sh");
    }

    #[test]
    fn all_templates_parse() {
        for (name, _) in TEMPLATES {
            assert!(environment().get_template(name).is_ok(), "{name}");
        }
    }
}
