#include "qparity/diagnose/trace.h"

#include <cmath>
#include <cstdio>

#include "common/format.h"

namespace qparity {
namespace {

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
    add(rows, "input" + c + " float", detail::g9(a.input), detail::g9(b.input), false);
    add(rows, "input" + c + " bin", integer(a.input_bin) + " (zp " +
                                        integer(r.fake_quant.input.used.grid.zero_point) + ")",
        integer(b.input_bin) + " (zp " + integer(r.int8.input.used.grid.zero_point) + ")", false);
    add(rows, "input" + c + " dequantized", detail::g9(a.input_dequantized), detail::g9(b.input_dequantized),
        a.input_dequantized != b.input_dequantized);
    add(rows, "weight" + c + " float", detail::g9(a.weight), detail::g9(b.weight), false);
    add(rows, "weight" + c + " bin",
        integer(a.weight_bin) + " (zp " + integer(r.fake_quant.weight.used.grid.zero_point) + ")",
        integer(b.weight_bin) + " (zp " + integer(r.int8.weight.used.grid.zero_point) + ")", false);
    add(rows, "weight" + c + " dequantized", detail::g9(a.weight_dequantized), detail::g9(b.weight_dequantized),
        a.weight_dequantized != b.weight_dequantized);
  }
  add(rows, "accumulator", detail::g9(f.accumulator) + " (float sum)",
      detail::g9(q.accumulator) + " (int32) = " + detail::g9(q.accumulator_real) + " real", false);
  if (q.accumulator_exact != static_cast<int64_t>(q.accumulator)) {
    add(rows, "accumulator saturation", "-",
        "exact " + integer(q.accumulator_exact) + ", kernel " + detail::g9(q.accumulator), true);
  }
  add(rows, "accumulator (real units)", detail::g9(f.accumulator_real), detail::g9(q.accumulator_real),
      f.accumulator_real != q.accumulator_real);
  add(rows, "bias", detail::g9(f.bias), detail::g9(q.bias) + (experiment.profile().requant == RequantScheme::kQnnpackFp32
                                                     ? " (int32, accumulator grid)"
                                                     : " (float)"),
      false);
  add(rows, "requantization multiplier", detail::g9(f.multiplier) + " = f(1/out_scale)",
      detail::g9(q.multiplier), false);
  const float q_steps = q.zero_point_added_before_rounding
                            ? q.pre_rounding - static_cast<float>(q.zero_point)
                            : q.pre_rounding;
  add(rows, "pre-rounding value (output steps)", detail::g9(f.pre_rounding),
      detail::g9(q_steps) + (q.zero_point_added_before_rounding
                          ? " (rounded as " + detail::g9(q.pre_rounding) + " after adding zp)"
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
  add(rows, "dequantized output", detail::g9(f.output_dequantized), detail::g9(q.output_dequantized),
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
