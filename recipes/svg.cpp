#include "recipes/svg.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace moekit::recipes::svg {

namespace {

const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string tick(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, std::fabs(v) >= 100 || v == std::floor(v) ? "%.0f" : "%.3g", v);
  return buf;
}

struct Frame {
  double w = 520, h = 260, left = 56, right = 12, top = 28, bottom = 40;
  double x0, x1, y0, y1;
  double px(double x) const { return left + (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5) * (w - left - right); }
  double py(double y) const { return h - bottom - (y1 > y0 ? (y - y0) / (y1 - y0) : 0.5) * (h - top - bottom); }
  std::string open(const std::string& title) const {
    return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(w) + "\" height=\"" + num(h) +
           "\" font-family=\"sans-serif\" font-size=\"11\">\n<text x=\"" + num(w / 2) +
           "\" y=\"16\" text-anchor=\"middle\" font-size=\"13\">" + escape(title) + "</text>\n";
  }
  std::string axes(const std::string& x_label) const {
    std::string s = "<rect x=\"" + num(left) + "\" y=\"" + num(top) + "\" width=\"" + num(w - left - right) +
                    "\" height=\"" + num(h - top - bottom) + "\" fill=\"none\" stroke=\"#888\"/>\n";
    for (int i = 0; i <= 4; ++i) {
      const double yv = y0 + (y1 - y0) * i / 4, xv = x0 + (x1 - x0) * i / 4;
      s += "<text x=\"" + num(left - 4) + "\" y=\"" + num(py(yv) + 4) + "\" text-anchor=\"end\">" + tick(yv) +
           "</text>\n";
      s += "<text x=\"" + num(px(xv)) + "\" y=\"" + num(h - bottom + 14) + "\" text-anchor=\"middle\">" + tick(xv) +
           "</text>\n";
    }
    s += "<text x=\"" + num((left + w - right) / 2) + "\" y=\"" + num(h - 6) + "\" text-anchor=\"middle\">" +
         escape(x_label) + "</text>\n";
    return s;
  }
};

}  // namespace

std::string escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string line_chart(const std::string& title, const std::string& x_label, const std::vector<Series>& series) {
  Frame f;
  f.x0 = f.y0 = INFINITY;
  f.x1 = f.y1 = -INFINITY;
  for (const auto& s : series)
    for (const auto& [x, y] : s.points) {
      if (!std::isfinite(y)) continue;
      f.x0 = std::min(f.x0, x), f.x1 = std::max(f.x1, x);
      f.y0 = std::min(f.y0, y), f.y1 = std::max(f.y1, y);
    }
  if (!std::isfinite(f.x0)) return "";
  f.x0 = std::min(f.x0, 0.0);  // steps, losses and accuracies read best from zero
  f.y0 = std::min(f.y0, 0.0);
  f.right = 110;  // the legend's column
  std::string s = f.open(title) + f.axes(x_label);
  for (size_t i = 0; i < series.size(); ++i) {
    const char* color = kColors[i % 8];
    std::string pts;
    for (const auto& [x, y] : series[i].points)
      if (std::isfinite(y)) pts += num(f.px(x)) + "," + num(f.py(y)) + " ";
    s +=
        "<polyline fill=\"none\" stroke=\"" + std::string(color) + "\" stroke-width=\"1.5\" points=\"" + pts + "\"/>\n";
    if (series[i].points.size() == 1)
      s += "<circle cx=\"" + num(f.px(series[i].points[0].first)) + "\" cy=\"" + num(f.py(series[i].points[0].second)) +
           "\" r=\"3\" fill=\"" + color + "\"/>\n";
    s += "<text x=\"" + num(f.w - f.right + 8) + "\" y=\"" + num(f.top + 10 + 13 * static_cast<double>(i)) +
         "\" fill=\"" + color + "\">" + escape(series[i].name) + "</text>\n";
  }
  return s + "</svg>\n";
}

std::string histogram(const std::string& title, const std::vector<double>& values, int bins) {
  std::vector<double> v;
  for (double x : values)
    if (std::isfinite(x)) v.push_back(x);
  if (v.empty() || bins < 1) return "";
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  Frame f;
  f.w = 300, f.h = 180;
  f.x0 = *lo, f.x1 = *hi > *lo ? *hi : *lo + 1;
  std::vector<double> counts(static_cast<size_t>(bins), 0);
  for (double x : v) counts[std::min<size_t>(static_cast<size_t>((x - f.x0) / (f.x1 - f.x0) * bins), bins - 1)] += 1;
  f.y0 = 0, f.y1 = *std::max_element(counts.begin(), counts.end());
  std::string s = f.open(title) + f.axes("log10 importance");
  for (int b = 0; b < bins; ++b) {
    const double xa = f.px(f.x0 + (f.x1 - f.x0) * b / bins), xb = f.px(f.x0 + (f.x1 - f.x0) * (b + 1) / bins);
    const double top = f.py(counts[static_cast<size_t>(b)]);
    s += "<rect x=\"" + num(xa) + "\" y=\"" + num(top) + "\" width=\"" + num(std::max(0.5, xb - xa - 1)) +
         "\" height=\"" + num(f.py(0) - top) + "\" fill=\"#1f77b4\"/>\n";
  }
  return s + "</svg>\n";
}

std::string heatmap(const std::string& title, const std::vector<std::vector<double>>& cells,
                    const std::string& row_label, const std::string& col_label) {
  size_t cols = 0;
  double top_value = 1e-12;  // colours scale to the largest cell: loads of 1/N read as well as 1
  for (const auto& r : cells) {
    cols = std::max(cols, r.size());
    for (double v : r) top_value = std::max(top_value, v);
  }
  if (cells.empty() || cols == 0) return "";
  const double cw = 56, ch = 22, left = 70, top = 40;
  Frame f;
  f.w = left + cw * static_cast<double>(cols) + 10, f.h = top + ch * static_cast<double>(cells.size()) + 10;
  std::string s = f.open(title);
  for (size_t c = 0; c < cols; ++c)
    s += "<text x=\"" + num(left + cw * (static_cast<double>(c) + 0.5)) + "\" y=\"" + num(top - 6) +
         "\" text-anchor=\"middle\">" + escape(col_label) + " " + std::to_string(c) + "</text>\n";
  for (size_t r = 0; r < cells.size(); ++r) {
    const double y = top + ch * static_cast<double>(r);
    s += "<text x=\"" + num(left - 6) + "\" y=\"" + num(y + 15) + "\" text-anchor=\"end\">" + escape(row_label) + " " +
         std::to_string(r) + "</text>\n";
    for (size_t c = 0; c < cells[r].size(); ++c) {
      const double v = std::clamp(cells[r][c] / top_value, 0.0, 1.0);
      const int shade = static_cast<int>(std::lround(250 - 140 * v));  // light enough for black text
      char fill[16], label[16];
      std::snprintf(fill, sizeof fill, "#%02x%02xff", shade, shade);
      std::snprintf(label, sizeof label, "%.1f%%", 100 * cells[r][c]);
      s += "<rect x=\"" + num(left + cw * static_cast<double>(c)) + "\" y=\"" + num(y) + "\" width=\"" + num(cw - 2) +
           "\" height=\"" + num(ch - 2) + "\" fill=\"" + fill + "\"/><text x=\"" +
           num(left + cw * (static_cast<double>(c) + 0.5)) + "\" y=\"" + num(y + 15) + "\" text-anchor=\"middle\">" +
           label + "</text>\n";
    }
  }
  return s + "</svg>\n";
}

}  // namespace moekit::recipes::svg
