//! SVG: layout-rs lays the nodes out (ranks top to bottom, edges routed around nodes) and
//! writes the SVG.

use layout::backends::svg::SVGWriter;
use layout::core::base::Orientation;
use layout::core::color::Color;
use layout::core::style::StyleAttr;
use layout::std_shapes::render::get_shape_size;
use layout::std_shapes::shapes::{Arrow, Element, LineEndKind, ShapeKind};
use layout::topo::layout::VisualGraph;

use crate::text::fill;
use crate::Diagram;

/// Font size of node text, in layout-rs units (pixels).
const FONT: usize = 14;

fn color(hex: &str) -> Color {
    let rgb = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap_or(0xdddddd);
    Color::new((rgb << 8) | 0xff)
}

impl Diagram {
    /// The diagram as an SVG document.
    pub fn to_svg(&self) -> String {
        let mut vg = VisualGraph::new(Orientation::TopToBottom);
        let mut handles = Vec::with_capacity(self.nodes.len());
        for n in &self.nodes {
            let shape = ShapeKind::new_box(&Self::lines(n).join("\n"));
            let look = StyleAttr::new(color("#555555"), 1, Some(color(fill(n.kind))), 6, FONT);
            let size = get_shape_size(Orientation::TopToBottom, &shape, FONT, false);
            handles.push(vg.add_node(Element::create(shape, look, Orientation::TopToBottom, size)));
        }
        for e in &self.edges {
            let (Some(from), Some(to)) = (
                self.nodes.iter().position(|n| n.id == e.from),
                self.nodes.iter().position(|n| n.id == e.to),
            ) else {
                continue;
            };
            let look = StyleAttr::new(color("#333333"), 1, None, 0, FONT);
            let arrow = Arrow::new(
                LineEndKind::None,
                LineEndKind::Arrow,
                layout::core::style::LineStyleKind::Normal,
                e.label.as_deref().unwrap_or(""),
                &look,
                &None,
                &None,
            );
            vg.add_edge(arrow, handles[from], handles[to]);
        }
        let mut svg = SVGWriter::new();
        if !self.nodes.is_empty() {
            vg.do_it(false, false, false, &mut svg);
        }
        titled(&svg.finalize(), &self.title)
    }
}

/// Room above the graph for its title.
const TITLE_HEIGHT: f64 = 44.0;

/// layout-rs's SVG with the title drawn above the graph (and as the document's `<title>`) and
/// a sans-serif font: its own document, re-headed; anything unexpected is returned as it is.
fn titled(svg: &str, title: &str) -> String {
    let number = |attr: &str| -> Option<f64> {
        let at = svg.find(&format!(" {attr}=\""))? + attr.len() + 3;
        svg[at..].split('"').next()?.parse().ok()
    };
    let (Some(start), Some(end), Some(width), Some(height)) = (
        svg.find("<svg").and_then(|s| svg[s..].find('>').map(|e| s + e + 1)),
        svg.rfind("</svg>"),
        number("width"),
        number("height"),
    ) else {
        return svg.to_owned();
    };
    let inner = svg[start..end].replace(
        "font-family: Times, serif;",
        "font-family: Helvetica, Arial, sans-serif;",
    );
    // layout-rs grows its window by a text's length in both directions, which leaves a long
    // blank below the graph: the drawing's own extent (its boxes and texts) is the size.
    let (used_width, used_height) = extent(&inner);
    let (width, height) = (width.min(used_width + 30.0), height.min(used_height + 30.0));
    let title = escape(title);
    let width = width.max(title.chars().count() as f64 * 10.0 + 40.0);
    let height = height + TITLE_HEIGHT;
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n\
         <svg width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" xmlns=\"http://www.w3.org/2000/svg\">\n\
         <title>{title}</title>\n\
         <rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n\
         <text x=\"{x}\" y=\"28\" text-anchor=\"middle\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"18\" font-weight=\"bold\">{title}</text>\n\
         <g transform=\"translate(0,{TITLE_HEIGHT})\">{inner}</g>\n</svg>\n",
        x = width / 2.0,
    )
}

/// The right and bottom edges of what `svg` draws: its `<rect>`s, and its `<text>`s with room
/// for a label beside their anchor.
fn extent(svg: &str) -> (f64, f64) {
    let attr = |element: &str, name: &str| -> f64 {
        element
            .split(&format!(" {name}=\""))
            .nth(1)
            .and_then(|v| v.split('"').next())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    let (mut right, mut bottom) = (0.0f64, 0.0f64);
    for rect in svg.split("<rect").skip(1) {
        right = right.max(attr(rect, "x") + attr(rect, "width"));
        bottom = bottom.max(attr(rect, "y") + attr(rect, "height"));
    }
    for text in svg.split("<text").skip(1) {
        right = right.max(attr(text, "x") + 40.0);
        bottom = bottom.max(attr(text, "y") + 2.0 * FONT as f64);
    }
    (right, bottom)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
