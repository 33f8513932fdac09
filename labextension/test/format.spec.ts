import { describe, expect, it } from 'vitest';

import {
  deployReference,
  deploymentDriftBadge,
  driftBadge,
  emptyText,
  esc,
  formatNumber,
  ICheck,
  IDeployment,
  IJob,
  IRetrainDefaults,
  jobBadge,
  plural,
  rejectionLine,
  relativeTime,
  retrainForm,
  retrainOptions,
  showsMessage,
  statusBadge,
  versionMessage
} from '../src/format';

const job = (over: Partial<IJob>): IJob => ({
  job_id: 'abcdef0123',
  model: 'churn',
  kind: 'retrain',
  status: 'finished',
  step: 'done',
  trigger: 'manual',
  created: 0,
  started: 0,
  ended: 1,
  champion: 'churn@1',
  challenger: 'churn@2',
  passed: true,
  promoted: true,
  error: null,
  gate: null,
  ...over
});

describe('badges', () => {
  it('maps deployment statuses to levels', () => {
    expect(statusBadge('running')).toEqual({ text: 'running', level: 'ok' });
    expect(statusBadge('dead').level).toBe('error');
    expect(statusBadge('unhealthy').level).toBe('warn');
    expect(statusBadge('something new').level).toBe('muted');
  });

  it('names the drifted features, at most two and a count', () => {
    expect(driftBadge(null).text).toBe('not checked');
    const check = { time: 0, state: 'alert', rows: 500, drift_share: 0.5, drifted: ['a', 'b', 'c'], version: 1 };
    expect(driftBadge(check)).toEqual({ text: 'drift: a, b +1', level: 'warn' });
    expect(driftBadge({ ...check, drifted: [], state: 'ok' })).toEqual({ text: 'no drift', level: 'ok' });
    expect(driftBadge({ ...check, drifted: [], state: 'not enough data' }).level).toBe('muted');
  });

  it('says what a job ended with', () => {
    expect(jobBadge(job({})).text).toBe('promoted');
    expect(jobBadge(job({ promoted: false, passed: false })).text).toBe('gate failed');
    expect(jobBadge(job({ status: 'failed', promoted: false })).level).toBe('error');
    expect(jobBadge(job({ status: 'running', step: 'gate' })).text).toBe('gate');
    expect(jobBadge(job({ status: 'queued', step: 'queued' })).text).toBe('queued');
  });
});

describe('text', () => {
  it('writes relative times', () => {
    expect(relativeTime(null)).toBe('—');
    expect(relativeTime(100, 112)).toBe('12 s ago');
    expect(relativeTime(0, 300)).toBe('5 min ago');
    expect(relativeTime(0, 3 * 3600)).toBe('3 h ago');
    expect(relativeTime(0, 2 * 86400)).toBe('2 d ago');
  });

  it('formats numbers with four significant digits', () => {
    expect(formatNumber(0.912345)).toBe('0.9123');
    expect(formatNumber(12)).toBe('12');
    expect(formatNumber(null)).toBe('—');
    expect(formatNumber(NaN)).toBe('—');
  });

  it('tells an empty section the one line that fills it', () => {
    expect(emptyText('models')).toContain('%%track --register NAME');
    expect(emptyText('deployments')).toContain('mlops.deploy');
    expect(emptyText('monitoring')).toContain('set_monitor');
    expect(emptyText('retraining')).toContain('retrain_policy');
  });

  it('deploys production when the alias exists, else latest', () => {
    const model = { name: 'churn', latest_version: 3, versions: 3, aliases: { production: 2 }, description: null, updated: null, metrics: {} };
    expect(deployReference(model)).toBe('churn@production');
    expect(deployReference({ ...model, aliases: {} })).toBe('churn@latest');
  });

  it('writes counts with the right plural', () => {
    expect(plural(1, 'request')).toBe('1 request');
    expect(plural(3, 'job')).toBe('3 jobs');
    expect(plural(null, 'request')).toBe('— requests');
  });

  it('escapes HTML', () => {
    expect(esc('<b a="1">&\'')).toBe('&lt;b a=&quot;1&quot;&gt;&amp;&#39;');
  });

  it('checks the versions of the sidebar and the server extension', () => {
    expect(versionMessage('0.1.0', '0.1.0')).toBeNull();
    expect(versionMessage('0.1.0', '0.2.0')).toContain('different versions');
    expect(versionMessage('0.1.0', null)).toContain('server extension is not answering');
  });
});

const check = (over: Partial<ICheck>): ICheck => ({
  time: 0,
  state: 'alert',
  rows: 500,
  drift_share: 0.5,
  drifted: ['calls'],
  version: 1,
  ...over
});

const deployment = (over: Partial<IDeployment>): IDeployment => ({
  deployment_id: 'd-1',
  reference: 'churn@production',
  model: 'churn',
  version: 1,
  status: 'running',
  url: 'http://127.0.0.1:8080',
  requests: 0,
  p50_ms: null,
  drift: null,
  curl: '',
  message: null,
  ...over
});

describe('deployments', () => {
  it('shows the drift of the version served now, not of the one before', () => {
    expect(deploymentDriftBadge(deployment({ drift: check({ version: 1 }) }))).toEqual({
      text: 'drift: calls',
      level: 'warn'
    });
    // restarted on v2 (or its alias moved): v1's check is not v2's drift
    expect(deploymentDriftBadge(deployment({ version: 2, drift: check({ version: 1 }) }))).toEqual({
      text: 'not checked',
      level: 'muted'
    });
    expect(deploymentDriftBadge(deployment({ version: 2, drift: check({ version: 2, drifted: [], state: 'ok' }) })).text).toBe(
      'no drift'
    );
  });

  it('shows no message while starting or running, and says why it is dead', () => {
    expect(showsMessage(deployment({ status: 'starting', message: 'The serving process (pid None) is gone.' }))).toBe(false);
    expect(showsMessage(deployment({ status: 'running', message: 'x' }))).toBe(false);
    expect(showsMessage(deployment({ status: 'dead', message: 'The serving process (pid 12) is gone.' }))).toBe(true);
    expect(statusBadge('starting')).toEqual({ text: 'starting', level: 'info' });
  });
});

describe('the retrain form', () => {
  const defaults: IRetrainDefaults = {
    model: 'churn',
    champion: 'churn@1',
    champion_alias: 'production',
    data: { df: 'churn_train@latest', labels: 'churn_labels@latest' },
    gate: ['metrics.accuracy >= champion.metrics.accuracy'],
    holdout: null,
    target: null,
    promote: 'production',
    metrics: ['accuracy'],
    policy: false
  };

  it("is filled with the model's defaults and sends them back unchanged", () => {
    const form = retrainForm(defaults);
    expect(form).toEqual({
      data: 'df = churn_train@latest\nlabels = churn_labels@latest',
      gate: 'metrics.accuracy >= champion.metrics.accuracy',
      holdout: '',
      target: '',
      promote: 'production'
    });
    expect(retrainOptions(form)).toEqual({
      data: defaults.data,
      gate: defaults.gate,
      holdout: null,
      target: null,
      promote: 'production'
    });
  });

  it('reads what the user changed: extra checks, a holdout, no alias to move', () => {
    const options = retrainOptions({
      data: '  df =  churn_train@v3 \n\n',
      gate: 'accuracy >= champion\n\n f1 >= 0.7 ',
      holdout: ' churn_holdout@v1 ',
      target: 'churned',
      promote: '  '
    });
    expect(options).toEqual({
      data: { df: 'churn_train@v3' },
      gate: ['accuracy >= champion', 'f1 >= 0.7'],
      holdout: 'churn_holdout@v1',
      target: 'churned',
      promote: null
    });
  });

  it('refuses a data line that is not "input = reference", naming it', () => {
    const form = { ...retrainForm(defaults), data: 'churn_train@latest' };
    expect(() => retrainOptions(form)).toThrow('Data line "churn_train@latest": write input = dataset@latest');
    expect(() => retrainOptions({ ...form, data: 'df =' })).toThrow('Data line "df ="');
  });

  it('says in the empty state that Retrain works without a policy', () => {
    expect(emptyText('retraining')).toContain('without a policy it opens a form');
  });
});

describe('rejections', () => {
  const check = {
    time: 0,
    state: 'alert',
    rows: 0,
    drift_share: null,
    drifted: [],
    version: 1
  };
  it('says the share refused and the top reasons', () => {
    const line = rejectionLine({
      ...check,
      received: 2000,
      rejected: 250,
      reasons: { schema: 50, missing_value: 200 }
    });
    expect(line).toBe('refused 12.5% of 2,000 requests (missing_value 200, schema 50)');
  });
  it('is empty when nothing was refused or checked', () => {
    expect(rejectionLine(null)).toBe('');
    expect(rejectionLine(check)).toBe('');
    expect(rejectionLine({ ...check, received: 10, rejected: 0, reasons: {} })).toBe('');
  });
});
