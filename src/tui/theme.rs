//! Colour themes: TOML files. dark (the default), light and high-contrast
//! ship in themes/ and are built in; more are read from
//! `$XDG_CONFIG_HOME/sandpit/themes/*.toml`.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr as _;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

use crate::toml_file::Locator;
use crate::tui::highlight::Kind;

const BUILTIN: [(&str, &str); 3] = [
    ("dark", include_str!("../../themes/dark.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
];

pub const DEFAULT_THEME: &str = "dark";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Theme {
    pub name: String,
    pub text: Color,
    pub muted: Color,
    pub accent: Color,
    pub border: Color,
    pub border_focused: Color,
    pub selection_fg: Color,
    pub selection_bg: Color,
    pub ok: Color,
    pub warning: Color,
    pub error: Color,
    pub stdout: Color,
    pub stderr: Color,
    pub cpu: Color,
    pub memory: Color,
    pub banner_fg: Color,
    pub banner_bg: Color,
    /// The editor's syntax colours, indexed by [`Kind`]: the `syntax_*`
    /// keys, optional (a theme without them gets [`Kind::fallback`]).
    pub syntax: [Color; Kind::ALL.len()],
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTheme {
    name: String,
    colors: BTreeMap<String, toml::Spanned<String>>,
}

impl Theme {
    pub fn text(&self) -> Style {
        Style::new().fg(self.text)
    }

    pub fn muted(&self) -> Style {
        Style::new().fg(self.muted)
    }

    pub fn accent(&self) -> Style {
        Style::new().fg(self.accent)
    }

    pub fn border(&self, focused: bool) -> Style {
        Style::new().fg(if focused {
            self.border_focused
        } else {
            self.border
        })
    }

    pub fn selected(&self) -> Style {
        Style::new()
            .fg(self.selection_fg)
            .bg(self.selection_bg)
            .add_modifier(Modifier::BOLD)
    }

    /// The colour of code of `kind` in the editor.
    pub fn syntax(&self, kind: Kind) -> Color {
        self.syntax[kind.index()]
    }

    pub fn banner(&self) -> Style {
        Style::new()
            .fg(self.banner_fg)
            .bg(self.banner_bg)
            .add_modifier(Modifier::BOLD)
    }

    /// Parses a theme file; every colour must be given and known.
    pub fn parse(text: &str, file_name: &str) -> Result<Self, String> {
        let locator = Locator::new(text, file_name);
        let raw: RawTheme = locator.parse().map_err(|err| err.to_string())?;
        let mut colors = raw.colors;
        let mut take = |key: &str| -> Result<Color, String> {
            take_color(&mut colors, &locator, key)?
                .ok_or_else(|| format!("{file_name}: [colors] lacks `{key}`"))
        };
        let mut theme = Theme {
            name: raw.name,
            text: take("text")?,
            muted: take("muted")?,
            accent: take("accent")?,
            border: take("border")?,
            border_focused: take("border_focused")?,
            selection_fg: take("selection_fg")?,
            selection_bg: take("selection_bg")?,
            ok: take("ok")?,
            warning: take("warning")?,
            error: take("error")?,
            stdout: take("stdout")?,
            stderr: take("stderr")?,
            cpu: take("cpu")?,
            memory: take("memory")?,
            banner_fg: take("banner_fg")?,
            banner_bg: take("banner_bg")?,
            syntax: [Color::Reset; Kind::ALL.len()],
        };
        for kind in Kind::ALL {
            theme.syntax[kind.index()] = match take_color(&mut colors, &locator, kind.theme_key())?
            {
                Some(color) => color,
                None => kind.fallback(&theme),
            };
        }
        if let Some(unknown) = colors.keys().next() {
            return Err(format!(
                "{file_name}: unknown colour key `{unknown}` in [colors]"
            ));
        }
        Ok(theme)
    }
}

/// Takes `key` out of a theme's colours: None when absent, an error naming
/// the key and place when it is not a colour.
fn take_color(
    colors: &mut BTreeMap<String, toml::Spanned<String>>,
    locator: &Locator,
    key: &str,
) -> Result<Option<Color>, String> {
    let Some(spanned) = colors.remove(key) else {
        return Ok(None);
    };
    Color::from_str(spanned.get_ref()).map(Some).map_err(|_| {
        locator
            .error(
                spanned.span(),
                format!(
                    "colour `{key}` = `{}` is not a colour name, #rrggbb or an index",
                    spanned.get_ref()
                ),
            )
            .to_string()
    })
}

/// The themes available, built-ins first, and what went wrong reading any.
#[derive(Debug, Clone)]
pub struct ThemeSet {
    pub themes: Vec<Theme>,
    pub problems: Vec<String>,
}

impl ThemeSet {
    /// Built-ins plus the `*.toml` files in `user_dir` (a user theme with a
    /// built-in's name replaces it). Bad files are reported, not fatal.
    pub fn load(user_dir: Option<&Path>) -> Self {
        let mut themes: Vec<Theme> = BUILTIN
            .iter()
            .filter_map(|(name, text)| Theme::parse(text, &format!("themes/{name}.toml")).ok())
            .collect();
        let mut problems = Vec::new();
        if let Some(dir) = user_dir
            && let Ok(entries) = std::fs::read_dir(dir)
        {
            let mut paths: Vec<_> = entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
                .collect();
            paths.sort();
            for path in paths {
                let shown = path.display().to_string();
                let parsed = std::fs::read_to_string(&path)
                    .map_err(|err| format!("cannot read {shown}: {err}"))
                    .and_then(|text| Theme::parse(&text, &shown));
                match parsed {
                    Ok(theme) => match themes.iter_mut().find(|t| t.name == theme.name) {
                        Some(existing) => *existing = theme,
                        None => themes.push(theme),
                    },
                    Err(problem) => problems.push(problem),
                }
            }
        }
        Self { themes, problems }
    }

    pub fn builtin() -> Self {
        Self::load(None)
    }

    /// The index of the named theme, or of the default with a problem noted.
    pub fn select(&mut self, name: Option<&str>) -> usize {
        let wanted = name.unwrap_or(DEFAULT_THEME);
        match self.themes.iter().position(|t| t.name == wanted) {
            Some(index) => index,
            None => {
                self.problems.push(format!(
                    "no theme named `{wanted}` (have {}); using {DEFAULT_THEME}",
                    self.names().join(", ")
                ));
                self.themes
                    .iter()
                    .position(|t| t.name == DEFAULT_THEME)
                    .unwrap_or(0)
            }
        }
    }

    pub fn names(&self) -> Vec<&str> {
        self.themes.iter().map(|t| t.name.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse() {
        let set = ThemeSet::builtin();
        assert_eq!(set.names(), ["dark", "light", "high-contrast"]);
        assert!(set.problems.is_empty(), "{:?}", set.problems);
    }

    #[test]
    fn bad_colour_names_the_key_and_place() {
        let text = BUILTIN[0]
            .1
            .replace("accent = \"cyan\"", "accent = \"cyann\"");
        let err = Theme::parse(&text, "mine.toml").unwrap_err();
        assert!(err.starts_with("mine.toml:"), "{err}");
        assert!(err.contains("`accent` = `cyann`"), "{err}");
    }

    #[test]
    fn unknown_and_missing_keys_are_named() {
        let text = BUILTIN[0]
            .1
            .replace("accent = \"cyan\"", "acent = \"cyan\"");
        let err = Theme::parse(&text, "mine.toml").unwrap_err();
        assert!(err.contains("lacks `accent`"), "{err}");
        let text = format!("{}extra = \"red\"\n", BUILTIN[0].1);
        let err = Theme::parse(&text, "mine.toml").unwrap_err();
        assert!(err.contains("unknown colour key `extra`"), "{err}");
    }

    #[test]
    fn user_themes_load_and_bad_ones_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("solar.toml"),
            BUILTIN[0].1.replace("name = \"dark\"", "name = \"solar\""),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("broken.toml"),
            "name = \"broken\"\n[colors]\ntext = 5\n",
        )
        .unwrap();
        let mut set = ThemeSet::load(Some(dir.path()));
        assert!(set.names().contains(&"solar"));
        assert_eq!(set.problems.len(), 1, "{:?}", set.problems);
        assert!(
            set.problems[0].contains("broken.toml"),
            "{:?}",
            set.problems
        );
        let solar = set.select(Some("solar"));
        assert_eq!(set.themes[solar].name, "solar");
        let fallback = set.select(Some("nope"));
        assert_eq!(set.themes[fallback].name, "dark");
        assert!(
            set.problems
                .last()
                .unwrap()
                .contains("no theme named `nope`")
        );
    }

    #[test]
    fn syntax_colours_are_optional_checked_and_readable() {
        let dark = Theme::parse(BUILTIN[0].1, "dark.toml").unwrap();
        assert_eq!(dark.syntax(Kind::Keyword), Color::LightMagenta);
        let without: String = BUILTIN[0]
            .1
            .lines()
            .filter(|line| !line.starts_with("syntax_"))
            .map(|line| format!("{line}\n"))
            .collect();
        let older = Theme::parse(&without, "older.toml").unwrap();
        assert_eq!(older.syntax(Kind::Keyword), older.accent);
        assert_eq!(older.syntax(Kind::Comment), older.muted);
        let bad = BUILTIN[0]
            .1
            .replace("syntax_type = \"light cyan\"", "syntax_type = \"lightish\"");
        let err = Theme::parse(&bad, "mine.toml").unwrap_err();
        assert!(err.contains("`syntax_type` = `lightish`"), "{err}");
        // On a white background every syntax colour is dark enough to read
        // (relative luminance under 0.3, about 3.5:1 contrast or better).
        let light = Theme::parse(BUILTIN[1].1, "light.toml").unwrap();
        for kind in Kind::ALL {
            let Color::Rgb(r, g, b) = light.syntax(kind) else {
                panic!("{kind:?} in light should be #rrggbb");
            };
            let linear = |c: u8| {
                let c = f64::from(c) / 255.0;
                if c <= 0.04045 {
                    c / 12.92
                } else {
                    ((c + 0.055) / 1.055).powf(2.4)
                }
            };
            let luminance = 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
            assert!(luminance < 0.3, "{kind:?} is too light: {luminance:.2}");
        }
        let kinds: std::collections::HashSet<_> =
            Kind::ALL.iter().map(|kind| light.syntax(*kind)).collect();
        assert_eq!(kinds.len(), Kind::ALL.len(), "each kind has its own colour");
    }
}
