import type { Client } from "@elastic/elasticsearch";
import { isControllerEvent } from "../core/events.ts";

/** One lifecycle event as the timeline shows it. */
export interface TimelineEntry {
  at: string;
  host: string;
  service?: string;
  action: string;
  outcome: string;
  durationMs?: number;
  reason?: string;
  commandId?: string;
  rolloutId?: string;
  traceId?: string;
  wave?: number;
  /** step.completed: the step's final status (success, failed, timed_out, unknown, undeliverable, cancelled). */
  stepStatus?: string;
  /** The stop needed escalation (a step or a command that still succeeded). */
  escalated?: boolean;
  evidence?: string;
  /** Written by the controller (event.provider), not by an agent. */
  controller?: boolean;
}

export interface Timeline {
  rolloutId?: string;
  traceId?: string;
  entries: TimelineEntry[];
}

interface EventSource {
  "@timestamp": string;
  host?: { name?: string };
  service?: { name?: string };
  event?: { action?: string; outcome?: string; duration?: number; reason?: string; provider?: string };
  trace?: { id?: string };
  lifeline?: {
    command_id?: string;
    rollout_id?: string;
    wave?: number;
    step_status?: string;
    escalated?: boolean;
    evidence?: string;
  };
}

/**
 * A rollout's (or a trace's) lifecycle events from Elasticsearch, controller's and agents' together, in the order
 * they happened (@timestamp, then the emitter's sequence). Agents' events get the wave of the command they ran.
 */
export async function readTimeline(
  client: Client,
  selector: { rollout?: string | undefined; trace?: string | undefined; namespace?: string | undefined },
): Promise<Timeline> {
  const namespace = selector.namespace ?? "*";
  const filter = selector.rollout
    ? { term: { "lifeline.rollout_id": selector.rollout } }
    : { term: { "trace.id": selector.trace ?? "" } };
  const found = await client.search<EventSource>({
    index: `logs-lifeline.lifecycle-${namespace},lifeline-lifecycle-${namespace}`,
    ignore_unavailable: true,
    allow_no_indices: true,
    size: 10_000,
    query: {
      bool: {
        filter: [filter],
        must_not: [{ terms: { "event.action": ["agent.heartbeat", "rollout.plan_part"] } }],
      },
    },
    sort: [{ "@timestamp": "asc" }, { "event.sequence": { order: "asc", unmapped_type: "long" } }],
  });
  const events = found.hits.hits.map((hit) => hit._source as EventSource);
  const waveOfCommand = new Map<string, number>();
  for (const event of events) {
    if (event.lifeline?.command_id && event.lifeline.wave !== undefined) {
      waveOfCommand.set(event.lifeline.command_id, event.lifeline.wave);
    }
  }
  const entries = events.map((event): TimelineEntry => {
    const commandId = event.lifeline?.command_id;
    const wave = event.lifeline?.wave ?? (commandId ? waveOfCommand.get(commandId) : undefined);
    return {
      at: event["@timestamp"],
      host: event.host?.name ?? "?",
      action: event.event?.action ?? "?",
      outcome: event.event?.outcome ?? "unknown",
      ...(event.service?.name ? { service: event.service.name } : {}),
      ...(event.event?.duration !== undefined ? { durationMs: Math.round(event.event.duration / 1e6) } : {}),
      ...(event.event?.reason ? { reason: event.event.reason } : {}),
      ...(commandId ? { commandId } : {}),
      ...(event.lifeline?.rollout_id ? { rolloutId: event.lifeline.rollout_id } : {}),
      ...(event.trace?.id ? { traceId: event.trace.id } : {}),
      ...(wave !== undefined ? { wave } : {}),
      ...(event.lifeline?.step_status ? { stepStatus: event.lifeline.step_status } : {}),
      ...(event.lifeline?.escalated ? { escalated: true } : {}),
      ...(event.lifeline?.evidence ? { evidence: event.lifeline.evidence } : {}),
      ...(isControllerEvent(event) ? { controller: true } : {}),
    };
  });
  const rolloutId = selector.rollout ?? entries.find((e) => e.rolloutId)?.rolloutId;
  const traceId = selector.trace ?? entries.find((e) => e.traceId)?.traceId;
  return { ...(rolloutId ? { rolloutId } : {}), ...(traceId ? { traceId } : {}), entries };
}

/** Counts of a timeline's steps by final status, escalations apart. */
export interface TimelineCounts {
  steps: number;
  success: number;
  failed: number;
  unknown: number;
  cancelled: number;
  escalated: number;
}

/**
 * A rollout's steps from their one final event each (`step.completed`); a trace without a rollout from its
 * commands' `command.completed`. Timed out and unknown steps count as unknown, undeliverable ones as failed.
 */
export function countSteps(entries: TimelineEntry[]): TimelineCounts {
  const counts: TimelineCounts = { steps: 0, success: 0, failed: 0, unknown: 0, cancelled: 0, escalated: 0 };
  const finals = entries.filter((e) => e.action === "step.completed");
  const source =
    finals.length > 0 ? finals : entries.filter((e) => !e.controller && e.action === "command.completed");
  for (const entry of source) {
    counts.steps++;
    if (entry.stepStatus === "cancelled") counts.cancelled++;
    else if (entry.outcome === "success") counts.success++;
    else if (entry.outcome === "failure") counts.failed++;
    else counts.unknown++;
    if (entry.escalated) counts.escalated++;
  }
  return counts;
}

export function describeCounts(c: TimelineCounts): string {
  return `${c.steps} steps: ${c.success} succeeded${c.escalated > 0 ? ` (${c.escalated} escalated)` : ""}, ${c.failed} failed, ${c.unknown} unknown, ${c.cancelled} cancelled`;
}

/** The ordered timeline as text: offset, host, service, wave, step, duration, outcome, reason. */
export function formatTimeline(timeline: Timeline): string {
  const start = Date.parse(timeline.entries[0]?.at ?? "0");
  const rows = timeline.entries.map((e) => [
    `+${((Date.parse(e.at) - start) / 1000).toFixed(3)}s`,
    e.host,
    e.service ?? "",
    e.wave !== undefined ? `wave ${e.wave}` : "",
    e.action,
    e.durationMs !== undefined ? `${e.durationMs} ms` : "",
    e.outcome,
    e.reason ?? "",
  ]);
  const header = ["time", "host", "service", "wave", "step", "duration", "outcome", "reason"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [
    `rollout ${timeline.rolloutId ?? "-"}  trace ${timeline.traceId ?? "-"}  ${timeline.entries.length} events, started ${timeline.entries[0]?.at ?? "-"}`,
    line(header),
    ...rows.map(line),
    describeCounts(countSteps(timeline.entries)),
    "",
  ].join("\n");
}

const escapeHtml = (text: string) =>
  text.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c,
  );

const COLORS: Record<string, string> = { success: "#2e8540", failure: "#cd2026", unknown: "#8a8a8a" };

/**
 * A self-contained page (inline SVG and CSS, no script, nothing fetched): one row per host and service, a bar per
 * command from received to completed (colour = outcome), its stop and start phases inside, escalations marked,
 * waves as bands; the full event table below.
 */
export function timelineHtml(timeline: Timeline): string {
  const entries = timeline.entries;
  const start = Date.parse(entries[0]?.at ?? "0");
  const end = Math.max(start + 1, ...entries.map((e) => Date.parse(e.at)));
  const rows = [...new Set(entries.filter((e) => e.service).map((e) => `${e.host} · ${e.service}`))];
  const left = 220;
  const width = 1000;
  const rowHeight = 30;
  const top = 40;
  const height = top + rows.length * rowHeight + 30;
  const x = (at: string) => left + ((Date.parse(at) - start) / (end - start)) * (width - left - 20);
  const shapes: string[] = [];

  const waves = entries.filter((e) => e.action === "wave.started");
  waves.forEach((wave, i) => {
    const next = waves[i + 1];
    const x1 = x(wave.at);
    const x2 = next ? x(next.at) : width - 20;
    shapes.push(
      `<rect class="wave" data-wave="${wave.wave ?? i + 1}" x="${x1}" y="${top - 20}" width="${Math.max(1, x2 - x1)}" height="${rows.length * rowHeight + 20}" fill="${i % 2 ? "#f4f6fa" : "#e8edf6"}"/>`,
      `<text x="${x1 + 4}" y="${top - 6}" class="label">wave ${wave.wave ?? i + 1}</text>`,
    );
  });
  rows.forEach((row, index) => {
    const y = top + index * rowHeight;
    shapes.push(`<text x="8" y="${y + 19}" class="row">${escapeHtml(row)}</text>`);
    shapes.push(
      `<line x1="${left}" x2="${width - 20}" y1="${y + rowHeight}" y2="${y + rowHeight}" stroke="#ddd"/>`,
    );
  });
  const commands = new Map<string, TimelineEntry[]>();
  for (const entry of entries) {
    if (!entry.commandId || !entry.service || entry.controller) continue;
    commands.set(entry.commandId, [...(commands.get(entry.commandId) ?? []), entry]);
  }
  for (const [commandId, events] of commands) {
    const first = events[0] as TimelineEntry;
    const row = rows.indexOf(`${first.host} · ${first.service}`);
    const y = top + row * rowHeight + 6;
    const completed = events.find((e) => e.action === "command.completed" || e.action === "command.rejected");
    const outcome = completed?.outcome ?? "unknown";
    const x1 = x(first.at);
    const x2 = Math.max(x1 + 3, x(completed?.at ?? first.at));
    shapes.push(
      `<rect class="command" data-command="${escapeHtml(commandId)}" data-outcome="${outcome}" x="${x1}" y="${y}" width="${x2 - x1}" height="18" rx="3" fill="${COLORS[outcome] ?? COLORS.unknown}" opacity="0.35"><title>${escapeHtml(`${first.host} ${first.service}: ${completed?.reason ?? outcome}`)}</title></rect>`,
    );
    const phase = (from: string, to: string, color: string, name: string) => {
      const a = events.find((e) => e.action === from);
      const b = events.find((e) => e.action === to);
      if (!a || !b) return;
      shapes.push(
        `<rect class="phase" data-phase="${name}" x="${x(a.at)}" y="${y + 4}" width="${Math.max(2, x(b.at) - x(a.at))}" height="10" fill="${color}"><title>${name}</title></rect>`,
      );
    };
    phase("stop.signal_sent", "stop.completed", "#b35c00", "stop");
    phase("start.spawned", "start.healthy", "#1f5fa8", "start");
    for (const escalation of events.filter((e) => e.action === "stop.escalated")) {
      const ex = x(escalation.at);
      shapes.push(
        `<path class="escalation" d="M${ex - 6},${y - 4} L${ex + 6},${y - 4} L${ex},${y + 6} Z" fill="#cd2026"><title>${escapeHtml(escalation.reason ?? "escalated")}</title></path>`,
      );
    }
  }
  const seconds = (end - start) / 1000;
  for (let tick = 0; tick <= 5; tick++) {
    const tx = left + (tick / 5) * (width - left - 20);
    const anchor = tick === 0 ? "start" : tick === 5 ? "end" : "middle";
    shapes.push(
      `<text x="${tx}" y="${height - 8}" class="axis" text-anchor="${anchor}">+${((seconds * tick) / 5).toFixed(1)}s</text>`,
    );
  }
  const counts = countSteps(entries);
  const table = entries
    .map(
      (e) =>
        `<tr class="${e.outcome}"><td>${escapeHtml(e.at)}</td><td>${escapeHtml(e.host)}</td><td>${escapeHtml(e.service ?? "")}</td><td>${e.wave ?? ""}</td><td>${escapeHtml(e.action)}</td><td>${e.durationMs ?? ""}</td><td>${escapeHtml(e.outcome)}</td><td>${escapeHtml(e.reason ?? "")}</td></tr>`,
    )
    .join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Lifeline timeline ${escapeHtml(timeline.rolloutId ?? timeline.traceId ?? "")}</title>
<style>
body{font:14px system-ui,sans-serif;margin:24px;color:#1b1b1b}
h1{font-size:18px;margin:0 0 4px} .meta{color:#555;margin-bottom:12px}
.row{font-size:12px} .label{font-size:11px;fill:#555} .axis{font-size:11px;fill:#555}
table{border-collapse:collapse;margin-top:16px;font-size:12px} td,th{padding:2px 8px;border-bottom:1px solid #eee;text-align:left}
tr.failure td{color:#cd2026} tr.unknown td{color:#8a8a8a}
.legend span{display:inline-block;margin-right:14px} .swatch{display:inline-block;width:12px;height:10px;margin-right:4px;vertical-align:middle}
</style></head><body>
<h1>Rollout ${escapeHtml(timeline.rolloutId ?? "-")}</h1>
<div class="meta">trace <code>${escapeHtml(timeline.traceId ?? "-")}</code> · ${entries.length} events · ${counts.steps} steps: <span id="succeeded">${counts.success}</span> succeeded (<span id="escalated">${counts.escalated}</span> escalated), <span id="failed">${counts.failed}</span> failed, <span id="unknown">${counts.unknown}</span> unknown, <span id="cancelled">${counts.cancelled}</span> cancelled · ${seconds.toFixed(1)} s</div>
<div class="legend"><span><i class="swatch" style="background:#b35c00"></i>stop (signal → exit)</span><span><i class="swatch" style="background:#1f5fa8"></i>start (spawn → healthy)</span><span><i class="swatch" style="background:#cd2026"></i>escalation / failure</span><span><i class="swatch" style="background:#2e8540;opacity:.35"></i>command, received → completed</span></div>
<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" role="img" aria-label="Gantt chart of the rollout">
${shapes.join("\n")}
</svg>
<table><thead><tr><th>time</th><th>host</th><th>service</th><th>wave</th><th>step</th><th>ms</th><th>outcome</th><th>reason</th></tr></thead><tbody>
${table}
</tbody></table>
</body></html>
`;
}
