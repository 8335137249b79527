#include "qparity/diagnose/fixes.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>

#include "common/format.h"
#include <exception>
#include <thread>

#include "qparity/numerics/float32.h"

namespace qparity {
namespace {

bool contains(const std::vector<std::string>& points, const std::string& point) {
  return std::find(points.begin(), points.end(), point) != points.end();
}

bool rules_differ(const QuantPoint& a, const QuantPoint& b) {
  const bool a_rule = a.used.derivation.has_value();
  const bool b_rule = b.used.derivation.has_value();
  return a_rule != b_rule || (a_rule && b_rule && a.used.derivation->rule != b.used.derivation->rule);
}

void add(std::vector<FixCandidate>& out, FixCandidate c) {
  for (const FixCandidate& existing : out) {
    if (existing.change == c.change) return;
  }
  out.push_back(std::move(c));
}

}  // namespace

std::vector<FixCandidate> propose_fixes(const SeedExperiment& experiment, const SeedResult& r,
                                        const Diagnosis& d) {
  if (d.paths_agree) return {};
  std::vector<std::string> points;
  for (const Finding& f : d.findings) points.push_back(f.point);
  return propose_fixes_for_points(experiment, r, points);
}

std::vector<FixCandidate> propose_fixes_for_points(const SeedExperiment& experiment,
                                                   const SeedResult& r,
                                                   const std::vector<std::string>& parted) {
  std::vector<FixCandidate> out;
  const SeedOptions& base = experiment.options();
  auto has_finding_at = [&](const std::string& point) { return contains(parted, point); };
  const std::vector<std::pair<const QuantPoint*, const QuantPoint*>> points{
      {&r.fake_quant.input, &r.int8.input},
      {&r.fake_quant.weight, &r.int8.weight},
      {&r.fake_quant.output, &r.int8.output}};

  for (const auto& [fq, q8] : points) {
    if (!has_finding_at(fq->name)) continue;
    // FakeQuantize honours hand-set scales: hand-set the value convert() will compute.
    if (base.observer == ObserverKind::kPlain && !fq->used.derivation && fq->channels.empty() &&
        fq->used.grid.scale != q8->used.grid.scale && fq->used.grid.zero_point == q8->used.grid.zero_point) {
      const float target = q8->used.grid.scale;
      FixCandidate c{"hand-set the " + fq->name + " fake-quant scale to " + detail::g9(target) +
                         " (computed in float32 from the observer range, as convert() does) "
                         "instead of " + detail::g9(fq->used.grid.scale),
                     "convert() derives " + detail::g9(target) + " with " +
                         std::string(to_string(q8->used.derivation->rule)) +
                         " in float32; the hand-set double value rounds to a scale " +
                         std::to_string(ulp_distance(target, fq->used.grid.scale)) + " ulp away",
                     base};
      (fq->name == "input" ? c.options.input_scale
                           : fq->name == "weight" ? c.options.weight_scale : c.options.output_scale) =
          static_cast<double>(target);
      add(out, std::move(c));
    }
    // The two paths derive this point with different rules: make both use the same one.
    if (base.observer == ObserverKind::kFused && rules_differ(*fq, *q8)) {
      FixCandidate c{"use FakeQuantize instead of FusedMovingAvgObsFakeQuantize in the qconfig",
                     "the fused module recomputes the " + fq->name + " qparams every forward with " +
                         std::string(to_string(fq->used.derivation->rule)) +
                         " while convert() uses " +
                         std::string(to_string(q8->used.derivation->rule)) +
                         "; FakeQuantize keeps the buffers that convert() re-derives",
                     base};
      c.options.observer = ObserverKind::kPlain;
      add(out, std::move(c));
    }
  }

  if (has_finding_at("weight") && is_symmetric(base.weight_qscheme)) {
    const float max_abs = std::max(std::fabs(r.int8.weight.used.derivation->min_val),
                                   std::fabs(r.int8.weight.used.derivation->max_val));
    const double half_range = static_cast<double>(base.weight_quant_max - base.weight_quant_min) / 2.0;
    const auto q_top = static_cast<double>(base.weight_quant_max);
    if (half_range != q_top && max_abs > 0.0f) {
      // convert()'s symmetric scale is max / half_range; a weight of max|w| then sits at
      // half_range steps (127.5 for [-128, 127]), between two bins. Hand-setting the observer
      // max to max|w| * half_range / qmax puts it exactly on the top bin.
      const double new_max = static_cast<double>(max_abs) * half_range / q_top;
      FixCandidate c{"hand-set the weight observer max_val to " + detail::g9(new_max) + " (= max|w| " +
                         detail::g9(max_abs) + " * " + detail::g9(half_range) + " / " + detail::g9(q_top) + ")",
                     "convert()'s symmetric weight scale becomes max|w| / " + detail::g9(q_top) +
                         ", so max|w| lands exactly on bin " + detail::g9(q_top) + " instead of " +
                         detail::g9(half_range) + " steps",
                     base};
      c.options.weight_observer_max = new_max;
      add(out, std::move(c));
    }
    if (base.weight_quant_min == -128) {
      FixCandidate c{"use the weight range [-127, 127] (quant_min=-127)",
                     "a symmetric range makes both rules agree on max|w| / 127", base};
      c.options.weight_quant_min = -127;
      add(out, std::move(c));
    }
    const bool per_channel = is_per_channel(base.weight_qscheme);
    FixCandidate affine{std::string("use qscheme=torch.") +
                            (per_channel ? "per_channel_affine" : "per_tensor_affine") +
                            " for the weight fake-quant",
                        "both rules then spread [min, max] over all " +
                            std::to_string(base.weight_quant_max - base.weight_quant_min + 1) +
                            " levels with a zero point",
                        base};
    affine.options.weight_qscheme =
        per_channel ? QScheme::kPerChannelAffine : QScheme::kPerTensorAffine;
    add(out, std::move(affine));
  }

  if (base.activation_reduce_range) {
    FixCandidate c{"set reduce_range=False for the activation fake-quants",
                   "the fake-quant path clamps activations to [0, 127] while the int8 kernel "
                   "writes the full [0, 255]",
                   base};
    c.options.activation_reduce_range = false;
    add(out, std::move(c));
  }

  if (has_finding_at("requantization")) {
    for (std::string_view name : backend_names()) {
      if (name == base.backend) continue;
      FixCandidate c{"deploy on the " + std::string(name) + " engine instead of " + base.backend,
                     "its requantization follows a different multiplier chain and rounding order",
                     base};
      c.options.backend = std::string(name);
      add(out, std::move(c));
    }
  }
  return out;
}

std::vector<VerifiedFix> verify_fixes(const std::vector<FixCandidate>& candidates,
                                      const SeedResult& original, const CpuFeatures& cpu) {
  std::vector<VerifiedFix> out = rerun_fixes(candidates, cpu);
  settle_parity(out, original);
  return out;
}

void settle_parity(std::vector<VerifiedFix>& fixes, const SeedResult& original) {
  const bool float_only = original.compare.bin_mismatch_count == 0;
  for (VerifiedFix& v : fixes) {
    v.verified_parity = !v.error && v.bin_mismatch_count == 0 &&
                        (!float_only || v.fp32_mismatch_count == 0);
  }
}

std::vector<VerifiedFix> rerun_fixes(const std::vector<FixCandidate>& candidates,
                                     const CpuFeatures& cpu) {
  std::vector<VerifiedFix> out(candidates.size());
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i = next++; i < candidates.size(); i = next++) {
      VerifiedFix& v = out[i];
      v.candidate = candidates[i];
      try {
        // The whole experiment again with the change, every element of both paths; only the
        // mismatch counts are needed from the comparison.
        const MismatchCounts counts =
            SeedExperiment(candidates[i].options, cpu).count_path_mismatches();
        v.bin_mismatch_count = counts.bins;
        v.fp32_mismatch_count = counts.floats;
      } catch (const std::exception& e) {
        v.error = e.what();
      }
    }
  };
  const size_t threads = std::min<size_t>(candidates.size(),
                                          std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (std::thread& t : pool) t.join();
  return out;
}

}  // namespace qparity
