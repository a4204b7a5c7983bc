/**
 * Scoring alert times against labelled anomaly windows.
 *
 * - precision: alerts inside a window / all alerts
 * - recall: windows with at least one alert / windows
 * - false positives per day: alerts outside every window / scored days
 * - delay: first alert inside a window minus the window start (detected windows only)
 * - NAB-style score (standard profile: A_TP = 1, A_FP = -0.11, A_FN = -1): the
 *   first alert in a window earns sigma(y) with y = (t - end) / length in [-1, 0],
 *   sigma(y) = 2 / (1 + e^(5y)) - 1; later alerts in the window count nothing;
 *   an alert outside every window costs A_FP * |sigma(y)| with y measured from
 *   the end of the preceding window (1 when there is none); a missed window
 *   costs A_FN. Normalised so that no alerts scores 0 and perfect (an alert at
 *   every window start) scores 100. This follows NAB's scoring scheme but is a
 *   re-implementation, not the official NAB scorer.
 */
export interface Window {
  startMs: number;
  endMs: number;
}

export interface AlertScore {
  alerts: number;
  truePositives: number;
  falsePositives: number;
  windows: number;
  detectedWindows: number;
  precision: number;
  recall: number;
  falsePositivesPerDay: number;
  meanDelayMinutes: number | null;
  delaysMinutes: number[];
  nab: { raw: number; normalized: number };
}

const A_TP = 1;
const A_FP = -0.11;
const A_FN = -1;

function sigma(y: number): number {
  return 2 / (1 + Math.exp(5 * y)) - 1;
}

export function scoreAlerts(alertTimes: number[], windows: Window[], scoredDays: number): AlertScore {
  const ws = [...windows].sort((a, b) => a.startMs - b.startMs);
  const first = new Array<number | null>(ws.length).fill(null);
  let tp = 0;
  let fp = 0;
  let raw = 0;
  for (const t of [...alertTimes].sort((a, b) => a - b)) {
    const w = ws.findIndex((x) => t >= x.startMs && t <= x.endMs);
    if (w >= 0) {
      tp++;
      if (first[w] === null) {
        first[w] = t;
        const win = ws[w]!;
        raw += A_TP * sigma((t - win.endMs) / (win.endMs - win.startMs));
      }
      continue;
    }
    fp++;
    let prev: Window | null = null;
    for (const x of ws) if (x.endMs < t) prev = x;
    const s = prev ? Math.abs(sigma((t - prev.endMs) / (prev.endMs - prev.startMs))) : 1;
    raw += A_FP * s;
  }
  const detected = first.filter((x) => x !== null).length;
  raw += A_FN * (ws.length - detected);
  const nullScore = A_FN * ws.length;
  const perfect = A_TP * sigma(-1) * ws.length;
  const normalized = ws.length > 0 ? (100 * (raw - nullScore)) / (perfect - nullScore) : 0;
  const delays = first.flatMap((t, i) => (t === null ? [] : [(t - ws[i]!.startMs) / 60_000]));
  const alerts = tp + fp;
  return {
    alerts,
    truePositives: tp,
    falsePositives: fp,
    windows: ws.length,
    detectedWindows: detected,
    precision: alerts > 0 ? tp / alerts : Number.NaN,
    recall: ws.length > 0 ? detected / ws.length : Number.NaN,
    falsePositivesPerDay: scoredDays > 0 ? fp / scoredDays : Number.NaN,
    meanDelayMinutes: delays.length > 0 ? delays.reduce((a, b) => a + b, 0) / delays.length : null,
    delaysMinutes: delays,
    nab: { raw, normalized },
  };
}
