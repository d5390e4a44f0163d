//! A small HCL writer whose output is already in `terraform fmt` canonical form.
//!
//! The rules it follows (checked against `terraform fmt` in the tests): two-space indents;
//! within a run of consecutive single-line attributes the `=` signs line up; a multi-line
//! attribute (an object) or a nested block ends the run and is not aligned itself.

/// An HCL expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Str(String),
    Int(i64),
    Bool(bool),
    /// Written as is: references (`aws_vpc.main.id`) and function calls.
    Raw(String),
    List(Vec<Expr>),
    /// Always written over several lines, one `"key" = value` a line.
    Object(Vec<(String, Expr)>),
    /// A function called with one argument: `jsonencode({ … })`.
    Call(&'static str, Box<Expr>),
}

/// An item of a body: an attribute or a nested block.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Attribute(String, Expr),
    Block(Block),
    /// An empty line between items, for readability.
    Blank,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub kind: String,
    pub labels: Vec<String>,
    pub body: Vec<Item>,
}

impl Block {
    pub fn new(kind: &str, labels: &[&str]) -> Self {
        Self {
            kind: kind.to_string(),
            labels: labels.iter().map(ToString::to_string).collect(),
            body: Vec::new(),
        }
    }

    pub fn attribute(mut self, name: &str, value: Expr) -> Self {
        self.body.push(Item::Attribute(name.to_string(), value));
        self
    }
}

/// Quotes a string for HCL, escaping template sequences so nothing is interpolated.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    let mut characters = text.chars().peekable();
    while let Some(character) = characters.next() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' | '%' if characters.peek() == Some(&'{') => {
                out.push(character);
                out.push(character);
            }
            other => out.push(other),
        }
    }
    out.push('"');
    out
}

impl Expr {
    fn is_multiline(&self) -> bool {
        match self {
            Expr::Object(entries) => !entries.is_empty(),
            Expr::Call(_, argument) => argument.is_multiline(),
            Expr::List(items) => items.iter().any(Expr::is_multiline),
            _ => false,
        }
    }

    fn write(&self, out: &mut String, indent: usize) {
        match self {
            Expr::Str(text) => out.push_str(&quote(text)),
            Expr::Int(number) => out.push_str(&number.to_string()),
            Expr::Bool(flag) => out.push_str(if *flag { "true" } else { "false" }),
            Expr::Raw(text) => out.push_str(text),
            Expr::List(items) => {
                out.push('[');
                for (position, item) in items.iter().enumerate() {
                    if position > 0 {
                        out.push_str(", ");
                    }
                    item.write(out, indent);
                }
                out.push(']');
            }
            Expr::Call(function, argument) => {
                out.push_str(function);
                out.push('(');
                argument.write(out, indent);
                out.push(')');
            }
            Expr::Object(entries) if entries.is_empty() => out.push_str("{}"),
            Expr::Object(entries) => {
                out.push_str("{\n");
                let items: Vec<Item> = entries
                    .iter()
                    .map(|(key, value)| Item::Attribute(quote(key), value.clone()))
                    .collect();
                write_body(out, &items, indent + 1);
                out.push_str(&"  ".repeat(indent));
                out.push('}');
            }
        }
    }
}

/// Writes the items of a body at `indent` levels.
pub fn write_body(out: &mut String, items: &[Item], indent: usize) {
    let pad = "  ".repeat(indent);
    let mut position = 0;
    while position < items.len() {
        match &items[position] {
            Item::Blank => {
                out.push('\n');
                position += 1;
            }
            Item::Block(block) => {
                write_block(out, block, indent);
                position += 1;
            }
            Item::Attribute(..) => {
                // A run of single-line attributes shares one `=` column.
                let run_end = items[position..]
                    .iter()
                    .position(
                        |item| !matches!(item, Item::Attribute(_, value) if !value.is_multiline()),
                    )
                    .map_or(items.len(), |offset| position + offset);
                if run_end == position {
                    if let Item::Attribute(name, value) = &items[position] {
                        out.push_str(&format!("{pad}{name} = "));
                        value.write(out, indent);
                        out.push('\n');
                    }
                    position += 1;
                    continue;
                }
                let width = items[position..run_end]
                    .iter()
                    .map(|item| match item {
                        Item::Attribute(name, _) => name.chars().count(),
                        _ => 0,
                    })
                    .max()
                    .unwrap_or(0);
                for item in &items[position..run_end] {
                    if let Item::Attribute(name, value) = item {
                        let padding = " ".repeat(width - name.chars().count());
                        out.push_str(&format!("{pad}{name}{padding} = "));
                        value.write(out, indent);
                        out.push('\n');
                    }
                }
                position = run_end;
            }
        }
    }
}

pub fn write_block(out: &mut String, block: &Block, indent: usize) {
    let pad = "  ".repeat(indent);
    out.push_str(&pad);
    out.push_str(&block.kind);
    for label in &block.labels {
        out.push(' ');
        out.push_str(&quote(label));
    }
    if block.body.is_empty() {
        out.push_str(" {}\n");
        return;
    }
    out.push_str(" {\n");
    write_body(out, &block.body, indent + 1);
    out.push_str(&pad);
    out.push_str("}\n");
}

/// Top-level blocks separated by blank lines, as `terraform fmt` leaves them.
pub fn write_file(header: &str, blocks: &[Block]) -> String {
    let mut out = String::new();
    for line in header.lines() {
        out.push_str("# ");
        out.push_str(line);
        out.push('\n');
    }
    for block in blocks {
        out.push('\n');
        write_block(&mut out, block, 0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_around_an_object_is_multi_line_and_so_is_a_list_holding_one() {
        let object = Expr::Object(vec![("Sid".to_string(), Expr::Str("x".to_string()))]);
        let call = Expr::Call("jsonencode", Box::new(object.clone()));
        assert!(call.is_multiline());
        assert!(Expr::List(vec![object]).is_multiline());
        assert!(!Expr::List(vec![Expr::Int(1)]).is_multiline());
        let mut out = String::new();
        call.write(&mut out, 0);
        assert_eq!(out, "jsonencode({\n  \"Sid\" = \"x\"\n})");
    }

    #[test]
    fn aligns_runs_and_breaks_on_multiline_values() {
        let block = Block::new("resource", &["aws_vpc", "main"])
            .attribute("cidr_block", Expr::Str("10.0.0.0/16".into()))
            .attribute("enable_dns_hostnames", Expr::Bool(true))
            .attribute(
                "tags",
                Expr::Object(vec![
                    ("Name".into(), Expr::Str("x".into())),
                    ("kubernetes.io/cluster/c".into(), Expr::Str("owned".into())),
                ]),
            )
            .attribute("id", Expr::Raw("aws_vpc.other.id".into()));
        let mut out = String::new();
        write_block(&mut out, &block, 0);
        assert_eq!(
            out,
            "resource \"aws_vpc\" \"main\" {\n  cidr_block           = \"10.0.0.0/16\"\n  enable_dns_hostnames = true\n  tags = {\n    \"Name\"                    = \"x\"\n    \"kubernetes.io/cluster/c\" = \"owned\"\n  }\n  id = aws_vpc.other.id\n}\n"
        );
    }

    #[test]
    fn quoting_escapes_interpolation() {
        assert_eq!(
            quote("a\"b\\c\n${x}%{y}$z"),
            "\"a\\\"b\\\\c\\n$${x}%%{y}$z\""
        );
    }
}
