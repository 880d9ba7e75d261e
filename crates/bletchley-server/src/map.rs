//! An offline world map: Natural Earth's 1:110m land outline, bundled as
//! TopoJSON (`static/land-110m.json`, see `static/LAND-NOTICE.md`), drawn
//! as SVG in an equirectangular projection with located events on it. No
//! tile server, no network: the page is complete as served.

use std::fmt::Write as _;
use std::sync::OnceLock;

use crate::html::esc;

const LAND: &str = include_str!("static/land-110m.json");
/// Projected width and height: one unit per half degree.
const W: f64 = 720.0;
const H: f64 = 360.0;

/// A point to mark: latitude, longitude, and what it is (shown on hover).
pub(crate) struct Located {
    pub(crate) lat: f64,
    pub(crate) lon: f64,
    pub(crate) label: String,
}

fn project(lat: f64, lon: f64) -> (f64, f64) {
    ((lon + 180.0) / 360.0 * W, (90.0 - lat) / 180.0 * H)
}

/// The land as one SVG path, decoded once.
fn land_path() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| decode(LAND).unwrap_or_default())
}

/// TopoJSON (quantised, delta-encoded arcs; polygons as rings of arc
/// indices, `!i` for arc `i` reversed) to an SVG path.
fn decode(topo: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(topo).ok()?;
    let scale = v["transform"]["scale"].as_array()?;
    let translate = v["transform"]["translate"].as_array()?;
    let (sx, sy) = (scale.first()?.as_f64()?, scale.get(1)?.as_f64()?);
    let (tx, ty) = (translate.first()?.as_f64()?, translate.get(1)?.as_f64()?);
    let arcs: Vec<Vec<(f64, f64)>> = v["arcs"]
        .as_array()?
        .iter()
        .map(|arc| {
            let (mut x, mut y) = (0i64, 0i64);
            arc.as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| {
                    x += p.get(0)?.as_i64()?;
                    y += p.get(1)?.as_i64()?;
                    Some(project(y as f64 * sy + ty, x as f64 * sx + tx))
                })
                .collect()
        })
        .collect();
    let mut d = String::new();
    for geometry in v["objects"]["land"]["geometries"].as_array()? {
        let polygons: Vec<&serde_json::Value> = match geometry["type"].as_str()? {
            "Polygon" => vec![&geometry["arcs"]],
            "MultiPolygon" => geometry["arcs"].as_array()?.iter().collect(),
            _ => continue,
        };
        for polygon in polygons {
            for ring in polygon.as_array().into_iter().flatten() {
                let mut points: Vec<(f64, f64)> = Vec::new();
                for index in ring.as_array().into_iter().flatten() {
                    let i = index.as_i64()?;
                    let (arc, reversed) = if i < 0 {
                        (arcs.get(usize::try_from(!i).ok()?)?, true)
                    } else {
                        (arcs.get(usize::try_from(i).ok()?)?, false)
                    };
                    let mut part: Vec<(f64, f64)> = arc.clone();
                    if reversed {
                        part.reverse();
                    }
                    // Consecutive arcs share their joining point.
                    let skip = usize::from(!points.is_empty());
                    points.extend(part.into_iter().skip(skip));
                }
                for (k, (x, y)) in points.iter().enumerate() {
                    let _ = write!(d, "{}{x:.1} {y:.1}", if k == 0 { "M" } else { "L" });
                }
                if !points.is_empty() {
                    d.push('Z');
                }
            }
        }
    }
    Some(d)
}

/// The map with `points` marked, framed on them (at least 20° across), or
/// the whole world when there are none.
pub(crate) fn svg(points: &[Located]) -> String {
    let (mut x0, mut y0, mut x1, mut y1) = (W, H, 0.0f64, 0.0f64);
    for p in points {
        let (x, y) = project(p.lat, p.lon);
        x0 = x0.min(x);
        y0 = y0.min(y);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    let (vx, vy, vw, vh) = if points.is_empty() {
        (0.0, 0.0, W, H)
    } else {
        // Pad, keep 2:1, stay on the map.
        let w = ((x1 - x0) * 1.4).clamp(40.0, W);
        let h = (w / 2.0).max((y1 - y0) * 1.4).min(H);
        let w = (h * 2.0).min(W);
        let cx = ((x0 + x1) / 2.0 - w / 2.0).clamp(0.0, W - w);
        let cy = ((y0 + y1) / 2.0 - h / 2.0).clamp(0.0, H - h);
        (cx, cy, w, h)
    };
    let r = (vw / 150.0).max(0.6);
    let mut out = format!(
        "<figure class=\"map\"><svg id=\"event-map\" viewBox=\"{vx:.1} {vy:.1} {vw:.1} {vh:.1}\" role=\"img\" aria-label=\"map of {} located events\">\
<rect class=\"sea\" x=\"0\" y=\"0\" width=\"{W}\" height=\"{H}\"/>",
        points.len()
    );
    for lon in (-150..=150).step_by(30) {
        let (x, _) = project(0.0, f64::from(lon));
        let _ = write!(
            out,
            "<line class=\"graticule\" x1=\"{x}\" x2=\"{x}\" y1=\"0\" y2=\"{H}\"/>"
        );
    }
    for lat in (-60..=60).step_by(30) {
        let (_, y) = project(f64::from(lat), 0.0);
        let _ = write!(
            out,
            "<line class=\"graticule\" x1=\"0\" x2=\"{W}\" y1=\"{y}\" y2=\"{y}\"/>"
        );
    }
    let _ = write!(out, "<path class=\"land\" d=\"{}\"/>", land_path());
    for p in points {
        let (x, y) = project(p.lat, p.lon);
        let _ = write!(
            out,
            "<circle class=\"event\" cx=\"{x:.2}\" cy=\"{y:.2}\" r=\"{r:.2}\"><title>{}</title></circle>",
            esc(&p.label)
        );
    }
    out.push_str("</svg><figcaption>Located events. Land: Natural Earth 1:110m, bundled (no tile server).</figcaption></figure>");
    out
}

/// `lat,lon` as a place, when it is one and on the globe.
pub(crate) fn parse_place(place: &str) -> Option<(f64, f64)> {
    let (a, b) = place.split_once(',')?;
    let (lat, lon) = (a.trim().parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?);
    ((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon)).then_some((lat, lon))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_land_decodes_to_a_world() {
        let d = land_path();
        // Many rings (continents and islands), every one closed.
        assert!(
            d.matches('M').count() > 100,
            "{} rings",
            d.matches('M').count()
        );
        assert_eq!(d.matches('M').count(), d.matches('Z').count());
        // Every coordinate inside the projected frame.
        for n in d
            .split(['M', 'L', 'Z', ' '])
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<f64>().expect("number"))
        {
            assert!((-0.5..=W + 0.5).contains(&n), "{n}");
        }
    }

    #[test]
    fn places_and_framing() {
        assert_eq!(parse_place("51.5,-0.12"), Some((51.5, -0.12)));
        assert_eq!(parse_place("cell 2345"), None);
        assert_eq!(parse_place("91,0"), None);
        assert_eq!(project(0.0, 0.0), (W / 2.0, H / 2.0));
        let london = [Located {
            lat: 51.5,
            lon: -0.12,
            label: "<call>".into(),
        }];
        let s = svg(&london);
        assert!(s.contains("&lt;call&gt;") && !s.contains("<call>"));
        // Framed on the point, not the whole world.
        assert!(
            !s.contains("viewBox=\"0.0 0.0 720.0 360.0\""),
            "{}",
            &s[..200]
        );
        assert!(svg(&[]).contains("viewBox=\"0.0 0.0 720.0 360.0\""));
    }
}
