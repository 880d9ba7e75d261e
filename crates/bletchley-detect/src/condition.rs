//! Sigma conditions: `and`, `or`, `not`, parentheses, and `1 of` / `all of` over names
//! with wildcards or `them`, parsed to a tree over the rule's search identifiers.

/// Why a condition does not parse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConditionError {
    /// A token that has no place where it stands.
    #[error("condition {condition:?}: unexpected {found} at word {position}")]
    Unexpected {
        /// The condition as written.
        condition: String,
        /// What was found.
        found: String,
        /// Its position, counting words from one.
        position: usize,
    },
    /// A name that is not one of the rule's search identifiers.
    #[error("condition {condition:?} names {name:?}, which the detection does not define")]
    Undefined {
        /// The condition.
        condition: String,
        /// The name.
        name: String,
    },
    /// The deprecated aggregation syntax (`| count() by x > 5`), which correlation rules
    /// replace.
    #[error("condition {0:?} uses the deprecated aggregation syntax: write a correlation rule")]
    Aggregation(String),
}

/// A condition over the rule's search identifiers, by their position in the detection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// One search identifier.
    Search(usize),
    /// Every part holds.
    And(Vec<Condition>),
    /// Some part holds.
    Or(Vec<Condition>),
    /// The part does not hold.
    Not(Box<Condition>),
}

impl Condition {
    /// Evaluates with `search(i)` deciding identifier `i`.
    pub fn eval(&self, search: &mut impl FnMut(usize) -> bool) -> bool {
        match self {
            Condition::Search(i) => search(*i),
            Condition::And(parts) => parts.iter().all(|p| p.eval(search)),
            Condition::Or(parts) => parts.iter().any(|p| p.eval(search)),
            Condition::Not(p) => !p.eval(search),
        }
    }

    /// Every identifier the condition reads.
    pub fn searches(&self, out: &mut Vec<usize>) {
        match self {
            Condition::Search(i) => out.push(*i),
            Condition::And(p) | Condition::Or(p) => p.iter().for_each(|c| c.searches(out)),
            Condition::Not(p) => p.searches(out),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    And,
    Or,
    Not,
    Open,
    Close,
    OneOf,
    AllOf,
    Name(String),
}

fn tokenize(s: &str) -> Result<Vec<Token>, ConditionError> {
    if s.contains('|') {
        return Err(ConditionError::Aggregation(s.to_owned()));
    }
    let spaced = s.replace('(', " ( ").replace(')', " ) ");
    let words: Vec<&str> = spaced.split_whitespace().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        let lower = w.to_ascii_lowercase();
        let next_is_of = words
            .get(i + 1)
            .is_some_and(|n| n.eq_ignore_ascii_case("of"));
        let tok = match lower.as_str() {
            "and" => Token::And,
            "or" => Token::Or,
            "not" => Token::Not,
            "(" => Token::Open,
            ")" => Token::Close,
            "1" | "any" if next_is_of => {
                i += 1;
                Token::OneOf
            }
            "all" if next_is_of => {
                i += 1;
                Token::AllOf
            }
            _ => Token::Name(w.to_owned()),
        };
        out.push(tok);
        i += 1;
    }
    Ok(out)
}

/// Parses a condition against the detection's identifier names (in order).
pub fn parse(condition: &str, names: &[String]) -> Result<Condition, ConditionError> {
    let tokens = tokenize(condition)?;
    let mut p = Parser {
        tokens: &tokens,
        pos: 0,
        names,
        text: condition,
    };
    let c = p.or()?;
    if p.pos < tokens.len() {
        return Err(p.unexpected());
    }
    Ok(c)
}

struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
    names: &'a [String],
    text: &'a str,
}

impl Parser<'_> {
    fn unexpected(&self) -> ConditionError {
        ConditionError::Unexpected {
            condition: self.text.to_owned(),
            found: match self.tokens.get(self.pos) {
                Some(t) => format!("{t:?}").to_lowercase(),
                None => "end".to_owned(),
            },
            position: self.pos + 1,
        }
    }

    fn or(&mut self) -> Result<Condition, ConditionError> {
        let mut parts = vec![self.and()?];
        while self.tokens.get(self.pos) == Some(&Token::Or) {
            self.pos += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Condition::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Condition, ConditionError> {
        let mut parts = vec![self.not()?];
        while self.tokens.get(self.pos) == Some(&Token::And) {
            self.pos += 1;
            parts.push(self.not()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Condition::And(parts)
        })
    }

    fn not(&mut self) -> Result<Condition, ConditionError> {
        if self.tokens.get(self.pos) == Some(&Token::Not) {
            self.pos += 1;
            return Ok(Condition::Not(Box::new(self.not()?)));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<Condition, ConditionError> {
        match self.tokens.get(self.pos).cloned() {
            Some(Token::Open) => {
                self.pos += 1;
                let c = self.or()?;
                if self.tokens.get(self.pos) != Some(&Token::Close) {
                    return Err(self.unexpected());
                }
                self.pos += 1;
                Ok(c)
            }
            Some(Token::Name(n)) => {
                self.pos += 1;
                let i = self.names.iter().position(|x| *x == n).ok_or_else(|| {
                    ConditionError::Undefined {
                        condition: self.text.to_owned(),
                        name: n.clone(),
                    }
                })?;
                Ok(Condition::Search(i))
            }
            Some(t @ (Token::OneOf | Token::AllOf)) => {
                self.pos += 1;
                let Some(Token::Name(pat)) = self.tokens.get(self.pos).cloned() else {
                    return Err(self.unexpected());
                };
                self.pos += 1;
                let hits: Vec<Condition> = self
                    .names
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| {
                        if pat == "them" {
                            !n.starts_with('_')
                        } else {
                            glob_name(&pat, n)
                        }
                    })
                    .map(|(i, _)| Condition::Search(i))
                    .collect();
                if hits.is_empty() {
                    return Err(ConditionError::Undefined {
                        condition: self.text.to_owned(),
                        name: pat,
                    });
                }
                Ok(if t == Token::OneOf {
                    Condition::Or(hits)
                } else {
                    Condition::And(hits)
                })
            }
            _ => Err(self.unexpected()),
        }
    }
}

/// Whether an identifier name matches a pattern with `*` (any run) and `?` (one).
fn glob_name(pat: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('*', rest)) => (0..=n.len()).any(|k| go(rest, &n[k..])),
            Some(('?', rest)) => !n.is_empty() && go(rest, &n[1..]),
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    let p: Vec<char> = pat.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    fn truth(cond: &str, ids: &[&str], true_ones: &[&str]) -> bool {
        let n = names(ids);
        let c = parse(cond, &n).expect("parses");
        c.eval(&mut |i| true_ones.contains(&ids[i]))
    }

    #[test]
    fn precedence_is_not_then_and_then_or() {
        let ids = ["a", "b", "c"];
        // a or b and c == a or (b and c)
        assert!(truth("a or b and c", &ids, &["a"]));
        assert!(!truth("a or b and c", &ids, &["b"]));
        assert!(!truth("(a or b) and c", &ids, &["a"]));
        assert!(truth("not a and b", &ids, &["b"]));
        assert!(!truth("not (a or b)", &ids, &["b"]));
        assert!(truth("not not a", &ids, &["a"]));
    }

    #[test]
    fn quantifiers_with_wildcards_and_them() {
        let ids = ["selection_a", "selection_b", "filter_x", "_hidden"];
        assert!(truth("1 of selection_*", &ids, &["selection_b"]));
        assert!(!truth("all of selection_*", &ids, &["selection_b"]));
        assert!(truth(
            "all of selection_* and not 1 of filter_*",
            &ids,
            &["selection_a", "selection_b"]
        ));
        assert!(truth(
            "all of them",
            &ids,
            &["selection_a", "selection_b", "filter_x"]
        ));
        assert!(truth("1 of them", &ids, &["filter_x"]));
        assert!(!truth("1 of them", &ids, &["_hidden"]));
    }

    #[test]
    fn bad_conditions_are_named() {
        let n = names(&["selection"]);
        assert!(matches!(
            parse("selection and", &n),
            Err(ConditionError::Unexpected { .. })
        ));
        assert!(matches!(
            parse("selction", &n),
            Err(ConditionError::Undefined { .. })
        ));
        assert!(matches!(
            parse("1 of filter_*", &n),
            Err(ConditionError::Undefined { .. })
        ));
        assert!(matches!(
            parse("selection | count() > 5", &n),
            Err(ConditionError::Aggregation(_))
        ));
        assert!(parse("(selection", &n).is_err());
        assert!(parse("selection)", &n).is_err());
    }
}
