/**
 * The sidebar's data types (the REST API's JSON) and the pure functions that turn them
 * into what the panel shows: badges, relative times, empty states, the version check.
 * No JupyterLab imports, so the unit tests run in plain Node.
 */

export interface IModelItem {
  name: string;
  latest_version: number | null;
  versions: number;
  aliases: Record<string, number>;
  description: string | null;
  updated: number | null;
  metrics: Record<string, number>;
}

export interface IPage<T> {
  total: number;
  offset: number;
  limit: number;
  items: T[];
}

export interface ICheck {
  time: number;
  state: string;
  rows: number;
  drift_share: number | null;
  drifted: string[];
  version: number | null;
  // requests the deployments received and refused in the checked window, and why
  received?: number | null;
  rejected?: number | null;
  rejection_rate?: number | null;
  reasons?: Record<string, number>;
}

export interface IDeployment {
  deployment_id: string;
  reference: string;
  model: string;
  version: number | null;
  status: string;
  url: string | null;
  requests: number | null;
  p50_ms: number | null;
  drift: ICheck | null;
  curl: string;
  message: string | null;
}

export interface IAlert {
  alert_id: number;
  model: string;
  kind: string;
  subject: string;
  message: string;
}

export interface IMonitoringItem {
  model: string;
  monitored: boolean;
  deployed: boolean;
  last_check: ICheck | null;
  alerts: IAlert[];
}

export interface IPolicy {
  model: string;
  enabled: boolean;
  on: string;
  schedule: string | null;
  next_run: number | null;
  gate: string;
  promote: string | null;
  pending: number;
  last_job: string | null;
}

export interface IGateLine {
  check: string;
  status: 'PASS' | 'FAIL' | 'SKIP';
  detail: string;
}

export interface IJob {
  job_id: string;
  model: string;
  kind: string;
  status: string;
  step: string | null;
  trigger: string;
  created: number;
  started: number | null;
  ended: number | null;
  champion: string | null;
  challenger: string | null;
  passed: boolean | null;
  promoted: boolean;
  error: string | null;
  gate: { passed: boolean; lines: IGateLine[] } | null;
  /** True when this request joined a job already waiting instead of starting one. */
  merged?: boolean;
}

export interface ISummary {
  models: IPage<IModelItem>;
  deployments: IDeployment[];
  monitoring: IMonitoringItem[];
  policies: IPolicy[];
  jobs: IPage<IJob>;
  elapsed_ms?: number;
}

/** What a retraining without a policy starts from (GET retraining/defaults/{model}). */
export interface IRetrainDefaults {
  model: string;
  champion: string;
  champion_alias: string | null;
  data: Record<string, string>;
  gate: string[];
  holdout: string | null;
  target: string | null;
  promote: string | null;
  metrics: string[];
  /** True when the model has a policy: Retrain then uses it, with no form. */
  policy: boolean;
}

/** The retrain form's fields, as the user edits them (text). */
export interface IRetrainForm {
  /** One "input = data reference" per line. */
  data: string;
  /** One check per line. */
  gate: string;
  holdout: string;
  target: string;
  promote: string;
}

/** The options POST retraining/jobs takes (retrain()'s). */
export interface IRetrainOptions {
  data: Record<string, string>;
  gate: string[];
  holdout: string | null;
  target: string | null;
  promote: string | null;
}

export type Level = 'ok' | 'warn' | 'error' | 'info' | 'muted';

export interface IBadge {
  text: string;
  level: Level;
}

/** The status badge of a deployment. */
export function statusBadge(status: string): IBadge {
  const levels: Record<string, Level> = {
    running: 'ok',
    starting: 'info',
    unhealthy: 'warn',
    dead: 'error',
    failed: 'error',
    stopped: 'muted'
  };
  return { text: status, level: levels[status] ?? 'muted' };
}

/** The drift badge of a deployment, from its model's last monitor check. */
export function driftBadge(check: ICheck | null): IBadge {
  if (!check) {
    return { text: 'not checked', level: 'muted' };
  }
  if (check.state === 'not enough data') {
    return { text: 'too few rows', level: 'muted' };
  }
  const drifted = check.drifted ?? [];
  if (drifted.length) {
    const shown = drifted.slice(0, 2).join(', ');
    const more = drifted.length > 2 ? ` +${drifted.length - 2}` : '';
    return { text: `drift: ${shown}${more}`, level: 'warn' };
  }
  return check.state === 'alert'
    ? { text: 'alert', level: 'warn' }
    : { text: 'no drift', level: 'ok' };
}

/**
 * The drift badge of a deployment: its model's last check, only when that check was of
 * the version the deployment serves now (after a restart or an alias move, an older
 * version's drift is not this one's).
 */
export function deploymentDriftBadge(d: IDeployment): IBadge {
  const check = d.drift;
  if (check && d.version !== null && check.version !== null && check.version !== d.version) {
    return driftBadge(null);
  }
  return driftBadge(check);
}

/** Whether a deployment's message is worth a line (not while it starts or runs). */
export function showsMessage(d: IDeployment): boolean {
  return Boolean(d.message) && d.status !== 'running' && d.status !== 'starting';
}

/** The retrain form, filled from the model's defaults. */
export function retrainForm(defaults: IRetrainDefaults): IRetrainForm {
  return {
    data: Object.entries(defaults.data ?? {})
      .map(([name, ref]) => `${name} = ${ref}`)
      .join('\n'),
    gate: (defaults.gate ?? []).join('\n'),
    holdout: defaults.holdout ?? '',
    target: defaults.target ?? '',
    promote: defaults.promote ?? ''
  };
}

/**
 * The options to send from the form's text: data lines "input = reference", one check
 * per line; an empty holdout or target is none, an empty alias registers only. A
 * malformed data line is an error that names it.
 */
export function retrainOptions(form: IRetrainForm): IRetrainOptions {
  const data: Record<string, string> = {};
  for (const raw of form.data.split('\n')) {
    const line = raw.trim();
    if (!line) {
      continue;
    }
    const at = line.indexOf('=');
    const name = at > 0 ? line.slice(0, at).trim() : '';
    const ref = at > 0 ? line.slice(at + 1).trim() : '';
    if (!name || !ref) {
      throw new Error(`Data line "${line}": write input = dataset@latest (or @vN).`);
    }
    data[name] = ref;
  }
  const text = (value: string) => (value.trim() ? value.trim() : null);
  return {
    data,
    gate: form.gate
      .split('\n')
      .map(line => line.trim())
      .filter(Boolean),
    holdout: text(form.holdout),
    target: text(form.target),
    promote: text(form.promote)
  };
}

/** A job's outcome in one word. */
/** "refused 12.5% of 2,000 requests (missing_value 200, schema 50)", or '' when none was. */
export function rejectionLine(check: ICheck | null): string {
  if (!check || !check.rejected || !check.received) {
    return '';
  }
  const rate = ((100 * check.rejected) / check.received).toFixed(1);
  const reasons = Object.entries(check.reasons ?? {})
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3)
    .map(([reason, count]) => `${reason} ${count.toLocaleString('en-US')}`)
    .join(', ');
  return (
    `refused ${rate}% of ${check.received.toLocaleString('en-US')} requests` +
    (reasons ? ` (${reasons})` : '')
  );
}

export function jobBadge(job: IJob): IBadge {
  if (job.status === 'failed') {
    return { text: 'failed', level: 'error' };
  }
  if (job.status === 'queued' || job.status === 'running') {
    return { text: job.step && job.status === 'running' ? job.step : job.status, level: 'info' };
  }
  if (job.promoted) {
    return { text: 'promoted', level: 'ok' };
  }
  if (job.passed === false) {
    return { text: 'gate failed', level: 'warn' };
  }
  return { text: 'not promoted', level: 'muted' };
}

/** "12 s ago", "5 min ago", "3 h ago", "2 d ago". */
export function relativeTime(epochSeconds: number | null, now: number = Date.now() / 1000): string {
  if (epochSeconds === null || epochSeconds === undefined) {
    return '—';
  }
  const delta = Math.max(0, now - epochSeconds);
  if (delta < 60) {
    return `${Math.round(delta)} s ago`;
  }
  if (delta < 3600) {
    return `${Math.round(delta / 60)} min ago`;
  }
  if (delta < 86400) {
    return `${Math.round(delta / 3600)} h ago`;
  }
  return `${Math.round(delta / 86400)} d ago`;
}

/** A metric for a table cell: 4 significant digits. */
export function formatNumber(value: number | null | undefined): string {
  if (value === null || value === undefined || Number.isNaN(value)) {
    return '—';
  }
  return Number.isInteger(value) ? String(value) : value.toPrecision(4).replace(/\.?0+$/, '');
}

export type Section = 'models' | 'deployments' | 'monitoring' | 'retraining';

/** What an empty section says, so the user knows the one line that fills it. */
export function emptyText(section: Section): string {
  switch (section) {
    case 'models':
      return 'No models yet: add `%%track --register NAME` to a training cell.';
    case 'deployments':
      return 'Nothing deployed: click Deploy on a model, or run mlops.deploy("NAME@production").';
    case 'monitoring':
      return 'No monitors: deploy a model, then mlops.set_monitor("NAME@production").';
    case 'retraining':
      return 'No retraining yet: click Retrain on a model (without a policy it opens a form with the model\'s defaults), or set one with mlops.retrain_policy("NAME", on=["drift"]).';
  }
}

/** The reference to deploy for a model: its production alias if set, else its latest. */
export function deployReference(model: IModelItem): string {
  return 'production' in (model.aliases ?? {}) ? `${model.name}@production` : `${model.name}@latest`;
}

/** A message when the sidebar and the server extension differ (null when they agree). */
export function versionMessage(frontend: string, server: string | null): string | null {
  if (server === null) {
    return (
      'The jupyter_mlops server extension is not answering: install the package in the ' +
      'environment that runs JupyterLab (pip install jupyter_mlops), check ' +
      '`jupyter server extension list`, then restart JupyterLab.'
    );
  }
  if (server !== frontend) {
    return (
      `The MLOps sidebar (${frontend}) and the server extension (${server}) are different ` +
      'versions: restart JupyterLab (and reload this page) after upgrading jupyter_mlops.'
    );
  }
  return null;
}

/** "1 request", "3 requests", "— requests" (count unknown). */
export function plural(count: number | null | undefined, word: string): string {
  if (count === null || count === undefined) {
    return `— ${word}s`;
  }
  return `${formatNumber(count)} ${word}${count === 1 ? '' : 's'}`;
}

/** Escape text for HTML. */
export function esc(text: unknown): string {
  return String(text ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}
