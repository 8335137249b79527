#include "qparity/diagnose/trace.h"

#include <cmath>
#include <cstdio>

namespace qparity {
namespace {

std::string num(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

std::string integer(int64_t v) { return std::to_string(v); }

void add(std::vector<TraceRow>& rows, std::string stage, std::string a, std::string b,
         bool differs) {
  rows.push_back({std::move(stage), std::move(a), std::move(b), differs});
}

}  // namespace

ElementExplanation explain_element(const SeedExperiment& experiment, const SeedResult& r,
                                   const ElementIndex& index) {
  ElementExplanation e;
  e.index = index;
  e.fake_quant = experiment.trace_fake_quant(r.fake_quant.grids(), index);
  e.int8 = experiment.trace_int8(r.int8.grids(), index);
  const ElementTrace& f = e.fake_quant;
  const ElementTrace& q = e.int8;
  auto& rows = e.rows;
  for (size_t i = 0; i < f.taps.size(); ++i) {
    const auto& a = f.taps[i];
    const auto& b = q.taps[i];
    // Taps whose weight is zero in both paths contribute nothing; list them briefly.
    if (a.weight_dequantized == 0.0f && b.weight_dequantized == 0.0f) {
      add(rows, "tap c=" + integer(a.channel) + ": weight 0 in both paths", "-", "-", false);
      continue;
    }
    const std::string c = "[c=" + integer(a.channel) + "]";
    add(rows, "input" + c + " float", num(a.input), num(b.input), false);
    add(rows, "input" + c + " bin", integer(a.input_bin) + " (zp " +
                                        integer(r.fake_quant.input.used.grid.zero_point) + ")",
        integer(b.input_bin) + " (zp " + integer(r.int8.input.used.grid.zero_point) + ")", false);
    add(rows, "input" + c + " dequantized", num(a.input_dequantized), num(b.input_dequantized),
        a.input_dequantized != b.input_dequantized);
    add(rows, "weight" + c + " float", num(a.weight), num(b.weight), false);
    add(rows, "weight" + c + " bin",
        integer(a.weight_bin) + " (zp " + integer(r.fake_quant.weight.used.grid.zero_point) + ")",
        integer(b.weight_bin) + " (zp " + integer(r.int8.weight.used.grid.zero_point) + ")", false);
    add(rows, "weight" + c + " dequantized", num(a.weight_dequantized), num(b.weight_dequantized),
        a.weight_dequantized != b.weight_dequantized);
  }
  add(rows, "accumulator", num(f.accumulator) + " (float sum)",
      num(q.accumulator) + " (int32) = " + num(q.accumulator_real) + " real", false);
  if (q.accumulator_exact != static_cast<int64_t>(q.accumulator)) {
    add(rows, "accumulator saturation", "-",
        "exact " + integer(q.accumulator_exact) + ", kernel " + num(q.accumulator), true);
  }
  add(rows, "accumulator (real units)", num(f.accumulator_real), num(q.accumulator_real),
      f.accumulator_real != q.accumulator_real);
  add(rows, "bias", num(f.bias), num(q.bias) + (experiment.profile().requant == RequantScheme::kQnnpackFp32
                                                     ? " (int32, accumulator grid)"
                                                     : " (float)"),
      false);
  add(rows, "requantization multiplier", num(f.multiplier) + " = f(1/out_scale)",
      num(q.multiplier), false);
  const float q_steps = q.zero_point_added_before_rounding
                            ? q.pre_rounding - static_cast<float>(q.zero_point)
                            : q.pre_rounding;
  add(rows, "pre-rounding value (output steps)", num(f.pre_rounding),
      num(q_steps) + (q.zero_point_added_before_rounding
                          ? " (rounded as " + num(q.pre_rounding) + " after adding zp)"
                          : ""),
      f.pre_rounding != q_steps);
  add(rows, "rounded (RNE)", integer(f.rounded),
      integer(q.zero_point_added_before_rounding ? q.rounded - q.zero_point : q.rounded),
      false);
  add(rows, "zero point", integer(f.zero_point) + " (added after rounding)",
      integer(q.zero_point) +
          (q.zero_point_added_before_rounding ? " (added before rounding)" : " (added after rounding)"),
      f.zero_point != q.zero_point);
  add(rows, "before clamp", integer(f.unclamped), integer(q.unclamped), false);
  add(rows, "output bin", integer(f.output_bin), integer(q.output_bin),
      f.output_bin != q.output_bin);
  add(rows, "dequantized output", num(f.output_dequantized), num(q.output_dequantized),
      f.output_dequantized != q.output_dequantized);
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i].differs) {
      e.first_difference = i;
      break;
    }
  }
  return e;
}

}  // namespace qparity
