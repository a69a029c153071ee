// An inline SVG line chart of one measurement (RTO or RPO) over a run of drills, against the
// objective: no script, no external font or stylesheet, so the file it sits in works offline.
import { formatSeconds } from './terminal';
import { html } from './escape';

export interface ChartPoint {
  workflowId: string;
  startedAt: string;
  outcome: 'passed' | 'failed';
  /** null: not measured (a failed drill whose smoke tests never passed has no RTO). */
  value: number | null;
  objective: number;
  link: string | null;
}

export const FRAME = { width: 760, height: 300, left: 80, right: 24, top: 48, bottom: 52 };
/** Where drills that measured nothing are marked: a band above the plot, off the scale. */
export const MISSING_Y = FRAME.top - 16;
const PLOT_W = FRAME.width - FRAME.left - FRAME.right;
const PLOT_H = FRAME.height - FRAME.top - FRAME.bottom;
const COLORS = {
  passed: '#1a7f37',
  failed: '#cf222e',
  objective: '#9a6700',
  line: '#8c959f',
  grid: '#d0d7de',
  text: '#24292f',
};

// Tick steps a person reads at a glance: seconds, then minutes, then hours.
const STEPS = [
  0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
];

export interface Scale {
  /** The value at the top of the plot. */
  top: number;
  step: number;
  x(index: number): number;
  y(value: number): number;
}

/** Points sit in equal slots left to right, oldest first; 0 is the bottom edge, `top` the top one. */
export function scaleFor(points: ChartPoint[]): Scale {
  const highest = Math.max(0, ...points.map((p) => p.objective), ...points.map((p) => p.value ?? 0));
  const target = highest > 0 ? highest * 1.1 : 1;
  let step = STEPS.find((s) => target / s <= 5);
  if (step === undefined) {
    step = STEPS[STEPS.length - 1]!;
    while (target / step > 5) step *= 2;
  }
  const top = Math.ceil(target / step) * step;
  const n = Math.max(points.length, 1);
  return {
    top,
    step,
    x: (i) => round(FRAME.left + (PLOT_W * (i + 0.5)) / n),
    y: (v) => round(FRAME.top + PLOT_H - (Math.min(Math.max(v, 0), top) / top) * PLOT_H),
  };
}

export function lineChart(what: 'RTO' | 'RPO', points: ChartPoint[], missing: string): string {
  const s = scaleFor(points);
  const bottom = FRAME.top + PLOT_H;
  const right = FRAME.left + PLOT_W;
  const half = PLOT_W / Math.max(points.length, 1) / 2;
  const parts: string[] = [];

  for (let k = 0; k <= Math.round(s.top / s.step); k++) {
    const v = k * s.step;
    const y = s.y(v);
    parts.push(
      `<line class="grid" x1="${FRAME.left}" x2="${right}" y1="${y}" y2="${y}" stroke="${COLORS.grid}" stroke-width="1"/>`,
    );
    parts.push(
      `<text x="${FRAME.left - 8}" y="${y + 4}" text-anchor="end" font-size="11" fill="${COLORS.text}">${html(formatSeconds(v))}</text>`,
    );
  }
  parts.push(`<line x1="${FRAME.left}" x2="${FRAME.left}" y1="${FRAME.top}" y2="${bottom}" stroke="${COLORS.text}"/>`);
  parts.push(`<line x1="${FRAME.left}" x2="${right}" y1="${bottom}" y2="${bottom}" stroke="${COLORS.text}"/>`);
  parts.push(
    `<text x="16" y="${FRAME.top + PLOT_H / 2}" transform="rotate(-90 16 ${FRAME.top + PLOT_H / 2})" text-anchor="middle" font-size="12" fill="${COLORS.text}">${what}</text>`,
  );
  parts.push(
    `<text x="${FRAME.left + PLOT_W / 2}" y="${FRAME.height - 8}" text-anchor="middle" font-size="12" fill="${COLORS.text}">drill start (UTC), oldest first</text>`,
  );

  // The objective: one segment per stretch of drills that ran under the same one (plans change).
  for (let i = 0; i < points.length;) {
    let j = i;
    while (j + 1 < points.length && points[j + 1]!.objective === points[i]!.objective) j++;
    const objective = points[i]!.objective;
    const y = s.y(objective);
    parts.push(
      `<line class="objective" data-objective-seconds="${objective}" x1="${round(s.x(i) - half)}" x2="${round(s.x(j) + half)}" y1="${y}" y2="${y}" stroke="${COLORS.objective}" stroke-width="2" stroke-dasharray="6 4"><title>${what} objective ${html(formatSeconds(objective))}</title></line>`,
    );
    if (j === points.length - 1)
      parts.push(
        `<text x="${right - 4}" y="${y - 5}" text-anchor="end" font-size="11" fill="${COLORS.objective}">objective ${html(formatSeconds(objective))}</text>`,
      );
    i = j + 1;
  }

  // The measured line breaks where a drill measured nothing, rather than pretending to know.
  let path = '';
  let pen = false;
  points.forEach((p, i) => {
    if (p.value === null) pen = false;
    else {
      path += `${pen ? 'L' : 'M'}${s.x(i)} ${s.y(p.value)} `;
      pen = true;
    }
  });
  if (path)
    parts.push(`<path class="measured" d="${path.trim()}" fill="none" stroke="${COLORS.line}" stroke-width="1.5"/>`);

  if (points.some((p) => p.value === null)) {
    parts.push(
      `<text x="${FRAME.left - 8}" y="${MISSING_Y + 4}" text-anchor="end" font-size="11" fill="${COLORS.failed}">${html(missing)}</text>`,
    );
  }
  const labelEvery = Math.ceil(points.length / 8);
  points.forEach((p, i) => {
    const x = s.x(i);
    const color = COLORS[p.outcome];
    const tip = `${p.workflowId}\n${p.startedAt}\n${p.outcome}: ${what} ${p.value === null ? missing : formatSeconds(p.value)} (objective ${formatSeconds(p.objective)})`;
    const data = `data-workflow-id="${html(p.workflowId)}" data-outcome="${p.outcome}" data-seconds="${p.value ?? ''}"`;
    const mark =
      p.value === null
        ? // Not measured: a cross in the band above the plot, off the scale, in the outcome's colour.
          `<g class="point ${p.outcome} missing" ${data}><title>${html(tip)}</title><path d="M${x - 5} ${MISSING_Y - 5}L${x + 5} ${MISSING_Y + 5}M${x - 5} ${MISSING_Y + 5}L${x + 5} ${MISSING_Y - 5}" stroke="${color}" stroke-width="2.5"/></g>`
        : `<circle class="point ${p.outcome}" ${data} cx="${x}" cy="${s.y(p.value)}" r="5" fill="${color}" stroke="#ffffff" stroke-width="1.5"><title>${html(tip)}</title></circle>`;
    parts.push(p.link ? `<a href="${html(p.link)}">${mark}</a>` : mark);
    if (i % labelEvery === 0) {
      parts.push(
        `<text x="${x}" y="${bottom + 16}" text-anchor="middle" font-size="10" fill="${COLORS.text}">${html(shortDate(p.startedAt))}</text>`,
      );
    }
  });

  const legendY = 16;
  parts.push(
    `<g class="legend" font-size="11" fill="${COLORS.text}">` +
      `<circle cx="${FRAME.left + 4}" cy="${legendY - 4}" r="4" fill="${COLORS.passed}"/><text x="${FRAME.left + 12}" y="${legendY}">passed</text>` +
      `<circle cx="${FRAME.left + 70}" cy="${legendY - 4}" r="4" fill="${COLORS.failed}"/><text x="${FRAME.left + 78}" y="${legendY}">failed</text>` +
      `<path d="M${FRAME.left + 132} ${legendY - 8}l8 8m0 -8l-8 8" stroke="${COLORS.failed}" stroke-width="2"/><text x="${FRAME.left + 146}" y="${legendY}">${html(missing)}</text>` +
      `<line x1="${FRAME.left + 240}" x2="${FRAME.left + 262}" y1="${legendY - 4}" y2="${legendY - 4}" stroke="${COLORS.objective}" stroke-width="2" stroke-dasharray="6 4"/><text x="${FRAME.left + 268}" y="${legendY}">objective</text>` +
      `</g>`,
  );

  const label = `${what} of ${points.length} drill${points.length === 1 ? '' : 's'} against the objective`;
  return (
    `<svg class="chart ${what.toLowerCase()}" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="${html(label)}" ` +
    `viewBox="0 0 ${FRAME.width} ${FRAME.height}" width="${FRAME.width}" height="${FRAME.height}" font-family="sans-serif">` +
    `<title>${html(label)}</title>${parts.join('')}</svg>`
  );
}

function shortDate(iso: string): string {
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? iso : new Date(ms).toISOString().slice(5, 16).replace('T', ' ');
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
