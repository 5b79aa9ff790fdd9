//! Draws a journey definition as a standalone SVG, to look at a layout outside the UI:
//! `cargo run -p nudge-core --example journey_svg -- definition.json [--rtl] > out.svg`.
//! The definition is read as a draft (not validated), as the editor would hold it.

use nudge_core::journey::JourneyDefinition;
use nudge_core::journey::layout::{LayoutOptions, SvgOptions, lay_out, svg};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .ok_or("usage: journey_svg FILE [--rtl] [--stats]")?;
    let definition: JourneyDefinition = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let stats = args.iter().any(|a| a == "--stats");
    let mut layout = lay_out(
        &definition,
        &LayoutOptions {
            extra_lines: usize::from(stats),
        },
    );
    if args.iter().any(|a| a == "--rtl") {
        layout = layout.mirror();
    }
    let mut options = SvgOptions {
        standalone: true,
        ..SvgOptions::default()
    };
    if stats {
        for (i, s) in definition.steps.iter().enumerate() {
            options.extra.insert(
                s.id.clone(),
                vec![format!("reached {} · waiting {}", 1200 / (i + 1), i % 3)],
            );
        }
        if let Some(s) = definition.steps.get(1) {
            options.problems.insert(s.id.clone());
        }
    }
    println!("{}", svg(&layout, &options));
    Ok(())
}
