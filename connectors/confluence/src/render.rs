//! Page bodies: Confluence storage format to Markdown, and Markdown to a runbook
//! of sections and numbered steps with their shell commands.
//!
//! Storage format is XHTML with Confluence's own `ac:`/`ri:` elements. Code macros
//! keep their text in CDATA sections, which an HTML parser reads as comments and
//! drops, so they are rewritten to `<pre><code>` first; the rest goes through
//! [`htmd`], a maintained HTML-to-Markdown converter.

use serde::Serialize;

/// Languages whose code blocks hold shell commands (also blocks without a language).
const SHELL_LANGUAGES: &[&str] = &[
    "",
    "bash",
    "sh",
    "shell",
    "zsh",
    "console",
    "powershell",
    "ps1",
    "cmd",
    "bat",
    "none",
    "text",
    "plain",
];

/// Command-line tools that make an inline code span a command.
const COMMAND_TOOLS: &[&str] = &[
    "kubectl",
    "helm",
    "docker",
    "systemctl",
    "journalctl",
    "curl",
    "aws",
    "gcloud",
    "az",
    "psql",
    "mysql",
    "redis-cli",
    "ssh",
    "sudo",
    "terraform",
    "ansible",
    "git",
    "service",
    "tail",
    "grep",
    "cat",
    "ls",
    "ps",
    "top",
    "df",
    "du",
    "free",
    "netstat",
    "ss",
    "dig",
    "nslookup",
    "ping",
    "openssl",
    "make",
    "npm",
    "pip",
    "python",
    "python3",
    "java",
    "nomad",
    "consul",
    "vault",
    "etcdctl",
    "crictl",
    "oc",
    "istioctl",
    "rm",
    "mv",
    "cp",
    "kill",
    "pkill",
    "reboot",
];

/// Words that make a command risky to run unattended (changes or stops something).
const RISKY_WORDS: &[&str] = &[
    "rm",
    "delete",
    "drop",
    "truncate",
    "kill",
    "pkill",
    "reboot",
    "shutdown",
    "restart",
    "stop",
    "scale",
    "apply",
    "patch",
    "replace",
    "rollback",
    "undo",
    "uninstall",
    "upgrade",
    "failover",
    "terminate",
    "destroy",
    "--force",
    "update",
    "insert",
    "alter",
    "drain",
    "cordon",
    "taint",
    "edit",
    "set",
    "mv",
    "promote",
    "flushall",
    "flushdb",
];

/// Storage format (XHTML with `ac:` macros) as plain HTML an HTML parser keeps whole.
pub fn storage_to_html(storage: &str) -> String {
    let mut html = replace_code_macros(storage);
    html = remove_elements(&html, "ac:parameter");
    html = replace_page_links(&html);
    replace_cdata(&html)
}

/// Storage format as Markdown.
pub fn storage_to_markdown(storage: &str) -> String {
    let html = storage_to_html(storage);
    let converter = htmd::HtmlToMarkdown::builder()
        .skip_tags(vec!["script", "style", "head"])
        .build();
    match converter.convert(&html) {
        Ok(markdown) => markdown.trim().to_owned(),
        // The converter fails only on I/O of its in-memory writer; keep the text.
        Err(_) => html,
    }
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Byte index of `needle` in `hay` at or after `from`, ignoring ASCII case.
fn find_ci(hay: &str, needle: &str, from: usize) -> Option<usize> {
    let hay_bytes = hay.as_bytes();
    let needle = needle.as_bytes();
    if needle.is_empty() || from > hay_bytes.len() {
        return None;
    }
    (from..=hay_bytes.len().saturating_sub(needle.len())).find(|&start| {
        hay_bytes[start..start + needle.len()].eq_ignore_ascii_case(needle)
            && hay.is_char_boundary(start)
    })
}

/// The value of attribute `name` in the start tag `tag`.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = find_ci(tag, &format!("{name}=\""), 0)? + name.len() + 2;
    let end = tag[start..].find('"')? + start;
    Some(tag[start..end].to_owned())
}

/// The text of a CDATA section or plain element body.
fn body_text(inner: &str) -> String {
    match (inner.find("<![CDATA["), inner.rfind("]]>")) {
        (Some(start), Some(end)) if end > start => inner[start + 9..end].to_owned(),
        _ => inner.to_owned(),
    }
}

/// Rewrites `code` and `noformat` macros to `<pre><code class="language-…">`.
fn replace_code_macros(storage: &str) -> String {
    const OPEN: &str = "<ac:structured-macro";
    const CLOSE: &str = "</ac:structured-macro>";
    let mut out = String::with_capacity(storage.len());
    let mut position = 0;
    while let Some(start) = find_ci(storage, OPEN, position) {
        let Some(tag_end) = storage[start..].find('>').map(|end| start + end + 1) else {
            break;
        };
        let tag = &storage[start..tag_end];
        let name = attribute(tag, "ac:name")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let body_open = find_ci(storage, "<ac:plain-text-body>", tag_end);
        let close = find_ci(storage, CLOSE, tag_end);
        let (Some(close), true) = (close, name == "code" || name == "noformat") else {
            out.push_str(&storage[position..tag_end]);
            position = tag_end;
            continue;
        };
        let inner = &storage[tag_end..close];
        let language = find_ci(inner, "ac:name=\"language\"", 0)
            .and_then(|at| {
                let value_start = inner[at..].find('>')? + at + 1;
                let value_end = inner[value_start..].find('<')? + value_start;
                Some(inner[value_start..value_end].trim().to_ascii_lowercase())
            })
            .unwrap_or_default();
        let code = match body_open {
            Some(open) if open < close => {
                let text_start = open + "<ac:plain-text-body>".len();
                let text_end = find_ci(storage, "</ac:plain-text-body>", text_start)
                    .filter(|end| *end <= close)
                    .unwrap_or(close);
                body_text(&storage[text_start..text_end])
            }
            _ => String::new(),
        };
        out.push_str(&storage[position..start]);
        let class = if language.is_empty() {
            String::new()
        } else {
            format!(
                " class=\"language-{}\"",
                escape_html(&language).replace('"', "")
            )
        };
        out.push_str(&format!(
            "<pre><code{class}>{}</code></pre>",
            escape_html(&code)
        ));
        position = close + CLOSE.len();
    }
    out.push_str(&storage[position..]);
    out
}

/// Removes every `<tag …>…</tag>` (macro parameters, which are settings, not text).
fn remove_elements(html: &str, tag: &str) -> String {
    let open = format!("<{tag}");
    let close = format!("</{tag}>");
    let mut out = String::with_capacity(html.len());
    let mut position = 0;
    while let Some(start) = find_ci(html, &open, position) {
        out.push_str(&html[position..start]);
        match find_ci(html, &close, start) {
            Some(end) => position = end + close.len(),
            None => {
                position = html[start..]
                    .find('>')
                    .map_or(html.len(), |end| start + end + 1);
            }
        }
    }
    out.push_str(&html[position..]);
    out
}

/// Turns `<ri:page ri:content-title="X"/>` links into their title.
fn replace_page_links(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut position = 0;
    while let Some(start) = find_ci(html, "<ri:page", position) {
        let Some(end) = html[start..].find('>').map(|end| start + end + 1) else {
            break;
        };
        out.push_str(&html[position..start]);
        if let Some(title) = attribute(&html[start..end], "ri:content-title") {
            out.push_str(&title);
        }
        position = end;
    }
    out.push_str(&html[position..]);
    out
}

/// Replaces CDATA sections outside code macros with their escaped text.
fn replace_cdata(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut position = 0;
    while let Some(start) = html[position..].find("<![CDATA[").map(|at| at + position) {
        let Some(end) = html[start..].find("]]>").map(|at| at + start) else {
            break;
        };
        out.push_str(&html[position..start]);
        out.push_str(&escape_html(&html[start + 9..end]));
        position = end + 3;
    }
    out.push_str(&html[position..]);
    out
}

/// One section of a runbook: a heading and the Markdown under it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Section {
    /// The heading text (empty for text before the first heading).
    pub heading: String,
    /// 1 to 6; 0 for text before the first heading.
    pub level: u8,
    /// The section's Markdown, heading excluded.
    pub markdown: String,
}

/// A code block kept with a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CodeBlock {
    /// The block's language (empty when not given).
    pub language: String,
    /// Its text.
    pub code: String,
}

/// One numbered step of a runbook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// 1, 2, … across the whole page.
    pub number: usize,
    /// The heading of the section the step is in.
    pub section: String,
    /// What the step says, as Markdown without its code blocks.
    pub text: String,
    /// Shell commands from the step's code blocks and command-like inline code.
    pub commands: Vec<String>,
    /// Code blocks in other languages (SQL, YAML, …), kept as they are.
    pub code: Vec<CodeBlock>,
    /// `manual` (no commands), `safe_automated` (read-only commands) or
    /// `risky_automated` (commands that change or stop something).
    pub kind: &'static str,
}

/// A page read as a runbook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Runbook {
    /// The page's sections in order.
    pub sections: Vec<Section>,
    /// Its steps in order.
    pub steps: Vec<Step>,
}

fn heading_of(line: &str) -> Option<(u8, String)> {
    let trimmed = line.trim_start();
    let hashes = trimmed.bytes().take_while(|byte| *byte == b'#').count();
    if (1..=6).contains(&hashes) && trimmed[hashes..].starts_with(' ') {
        let level = u8::try_from(hashes).unwrap_or(6);
        return Some((
            level,
            trimmed[hashes..]
                .trim()
                .trim_end_matches('#')
                .trim()
                .to_owned(),
        ));
    }
    None
}

/// The text after an ordered-list marker (`1. `, `2) `), if the line starts an item.
fn ordered_item(line: &str) -> Option<&str> {
    let indent = line.len() - line.trim_start().len();
    if indent > 3 {
        return None;
    }
    let trimmed = line.trim_start();
    let digits = trimmed.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 3 {
        return None;
    }
    let rest = &trimmed[digits..];
    let rest = rest.strip_prefix('.').or_else(|| rest.strip_prefix(')'))?;
    rest.starts_with(' ').then(|| rest.trim())
}

fn fence_of(line: &str) -> Option<(&'static str, String)> {
    let trimmed = line.trim_start();
    for fence in ["```", "~~~"] {
        if let Some(info) = trimmed.strip_prefix(fence) {
            return Some((
                fence,
                info.trim_start_matches(['`', '~'])
                    .trim()
                    .to_ascii_lowercase(),
            ));
        }
    }
    None
}

/// Shell commands in a code block: prompts (`$ `) removed, comments and blank
/// lines dropped, backslash continuations joined.
pub fn commands_in(code: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut pending = String::new();
    for line in code.lines() {
        let line = line.trim();
        let line = line.strip_prefix("$ ").unwrap_or(line);
        if pending.is_empty()
            && (line.is_empty() || line.starts_with('#') || line.starts_with("//"))
        {
            continue;
        }
        if let Some(continued) = line.strip_suffix('\\') {
            pending.push_str(continued.trim_end());
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        let command = pending.trim().to_owned();
        if !command.is_empty() {
            commands.push(command);
        }
        pending.clear();
    }
    if !pending.trim().is_empty() {
        commands.push(pending.trim().to_owned());
    }
    commands
}

/// Inline code spans in `text` that start with a known command-line tool.
fn inline_commands(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::trim)
        .filter(|span| {
            span.split_whitespace()
                .next()
                .is_some_and(|tool| COMMAND_TOOLS.contains(&tool))
                && span.contains(' ')
        })
        .map(str::to_owned)
        .collect()
}

/// How risky a step's commands are.
pub fn classify(commands: &[String]) -> &'static str {
    if commands.is_empty() {
        return "manual";
    }
    let risky = commands.iter().any(|command| {
        command
            .to_ascii_lowercase()
            .split(|c: char| c.is_whitespace() || c == ';' || c == '|' || c == '&')
            .any(|word| RISKY_WORDS.contains(&word))
    });
    if risky {
        "risky_automated"
    } else {
        "safe_automated"
    }
}

struct StepDraft {
    section: String,
    text: Vec<String>,
    commands: Vec<String>,
    code: Vec<CodeBlock>,
}

impl StepDraft {
    fn finish(mut self, number: usize) -> Step {
        let text = self.text.join("\n").trim().to_owned();
        let mut commands = inline_commands(&text);
        commands.append(&mut self.commands);
        Step {
            number,
            section: self.section,
            kind: classify(&commands),
            text,
            commands,
            code: self.code,
        }
    }
}

/// Reads Markdown as a runbook: sections split at headings; steps are the items of
/// ordered lists, and code blocks outside a list become a step of their own with
/// the paragraph before them as its text.
pub fn runbook(markdown: &str) -> Runbook {
    let mut sections = vec![Section {
        heading: String::new(),
        level: 0,
        markdown: String::new(),
    }];
    let mut drafts: Vec<StepDraft> = Vec::new();
    // Whether the last draft is still open to continuation lines and code blocks.
    let mut open = false;
    let mut last_paragraph: Vec<String> = Vec::new();
    let mut fence: Option<(&'static str, String, Vec<String>)> = None;
    for line in markdown.lines() {
        let section = sections.last_mut().expect("there is always a section");
        if let Some((marker, language, mut body)) = fence.take() {
            if line.trim_start().starts_with(marker)
                && line.trim().trim_start_matches(['`', '~']).is_empty()
            {
                section.markdown.push_str(line);
                section.markdown.push('\n');
                let code = body.join("\n");
                let is_shell = SHELL_LANGUAGES.contains(&language.as_str());
                if !open {
                    drafts.push(StepDraft {
                        section: section.heading.clone(),
                        text: std::mem::take(&mut last_paragraph),
                        commands: Vec::new(),
                        code: Vec::new(),
                    });
                    open = true;
                }
                let draft = drafts.last_mut().expect("a draft was just ensured");
                if is_shell {
                    draft.commands.extend(commands_in(&code));
                } else {
                    draft.code.push(CodeBlock { language, code });
                }
            } else {
                // Indentation inside list items is the list's, not the code's.
                body.push(line.to_owned());
                fence = Some((marker, language, body));
                section.markdown.push_str(line);
                section.markdown.push('\n');
            }
            continue;
        }
        if let Some((level, heading)) = heading_of(line) {
            sections.push(Section {
                heading,
                level,
                markdown: String::new(),
            });
            open = false;
            last_paragraph.clear();
            continue;
        }
        section.markdown.push_str(line);
        section.markdown.push('\n');
        if let Some((marker, language)) = fence_of(line) {
            fence = Some((marker, language, Vec::new()));
            continue;
        }
        if let Some(item) = ordered_item(line) {
            drafts.push(StepDraft {
                section: section.heading.clone(),
                text: vec![item.to_owned()],
                commands: Vec::new(),
                code: Vec::new(),
            });
            open = true;
            last_paragraph.clear();
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let indented = line.starts_with("  ") || line.starts_with('\t');
        if open && indented {
            if let Some(draft) = drafts.last_mut() {
                draft.text.push(line.trim().to_owned());
            }
            continue;
        }
        open = false;
        last_paragraph = vec![line.trim().to_owned()];
    }
    if let Some((_, language, body)) = fence {
        let code = body.join("\n");
        drafts.push(StepDraft {
            section: sections
                .last()
                .map(|s| s.heading.clone())
                .unwrap_or_default(),
            text: last_paragraph,
            commands: if SHELL_LANGUAGES.contains(&language.as_str()) {
                commands_in(&code)
            } else {
                Vec::new()
            },
            code: Vec::new(),
        });
    }
    for section in &mut sections {
        section.markdown = section.markdown.trim().to_owned();
    }
    if sections[0].markdown.is_empty() && sections.len() > 1 {
        sections.remove(0);
    }
    let steps = drafts
        .into_iter()
        .enumerate()
        .map(|(index, draft)| draft.finish(index + 1))
        .collect();
    Runbook { sections, steps }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STORAGE: &str = r#"<h1>Checkout runbook</h1><p>When checkout errors spike.</p>
<h2>Diagnose</h2><ol><li><p>Check the pods:</p><ac:structured-macro ac:name="code" ac:schema-version="1"><ac:parameter ac:name="language">bash</ac:parameter><ac:plain-text-body><![CDATA[$ kubectl get pods -n checkout
kubectl logs deploy/checkout \
  --since=10m]]></ac:plain-text-body></ac:structured-macro></li>
<li><p>Look at the dashboard in <ac:link><ri:page ri:content-title="Checkout dashboards" /></ac:link>.</p></li></ol>
<h2>Mitigate</h2><ol><li><p>Restart with <code>kubectl rollout restart deploy/checkout -n checkout</code></p></li></ol>
<p>Then check the orders table:</p><ac:structured-macro ac:name="code"><ac:parameter ac:name="language">sql</ac:parameter><ac:plain-text-body><![CDATA[SELECT count(*) FROM orders WHERE created_at > now() - interval '5 minutes';]]></ac:plain-text-body></ac:structured-macro>"#;

    #[test]
    fn code_macros_survive_as_fenced_blocks() {
        let markdown = storage_to_markdown(STORAGE);
        assert!(markdown.contains("# Checkout runbook"), "{markdown}");
        assert!(markdown.contains("```bash"), "{markdown}");
        assert!(
            markdown.contains("kubectl get pods -n checkout"),
            "{markdown}"
        );
        assert!(markdown.contains("Checkout dashboards"), "{markdown}");
        assert!(!markdown.contains("CDATA"), "{markdown}");
        assert!(!markdown.contains("ac:"), "{markdown}");
    }

    #[test]
    fn runbooks_have_sections_and_numbered_steps_with_commands() {
        let book = runbook(&storage_to_markdown(STORAGE));
        let headings: Vec<&str> = book.sections.iter().map(|s| s.heading.as_str()).collect();
        assert_eq!(headings, ["Checkout runbook", "Diagnose", "Mitigate"]);
        assert_eq!(book.steps.len(), 4, "{:#?}", book.steps);
        let first = &book.steps[0];
        assert_eq!(first.number, 1);
        assert_eq!(first.section, "Diagnose");
        assert_eq!(
            first.commands,
            [
                "kubectl get pods -n checkout",
                "kubectl logs deploy/checkout --since=10m"
            ]
        );
        assert_eq!(first.kind, "safe_automated");
        assert_eq!(book.steps[1].kind, "manual");
        assert_eq!(
            book.steps[2].commands,
            ["kubectl rollout restart deploy/checkout -n checkout"]
        );
        assert_eq!(book.steps[2].kind, "risky_automated");
        let sql = &book.steps[3];
        assert_eq!(sql.text, "Then check the orders table:");
        assert!(sql.commands.is_empty());
        assert_eq!(sql.code[0].language, "sql");
    }

    #[test]
    fn commands_drop_prompts_comments_and_join_continuations() {
        assert_eq!(
            commands_in("# restart\n$ systemctl restart nginx\n\ncurl -s \\\n  https://x/health"),
            ["systemctl restart nginx", "curl -s https://x/health"]
        );
    }
}
