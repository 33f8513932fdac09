import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { ISummary } from '../src/format';
import { IClient, SidebarModel } from '../src/model';

const SUMMARY: ISummary = {
  models: { total: 1, offset: 0, limit: 50, items: [] },
  deployments: [],
  monitoring: [],
  policies: [],
  jobs: { total: 0, offset: 0, limit: 30, items: [] }
};

class FakeServer implements IClient {
  calls: string[] = [];
  version = '0.1.0';
  fail: { status: number; message: string } | null = null;

  async get<T>(path: string): Promise<T> {
    this.calls.push(`GET ${path}`);
    if (this.fail) {
      throw Object.assign(new Error(this.fail.message), { status: this.fail.status });
    }
    if (path === 'version') {
      return { version: this.version, store: '/tmp/.mlops' } as T;
    }
    return SUMMARY as T;
  }

  async post<T>(path: string, body?: unknown): Promise<T> {
    this.calls.push(`POST ${path} ${JSON.stringify(body ?? {})}`);
    return { job_id: '0123456789' } as T;
  }

  async del<T>(path: string): Promise<T> {
    this.calls.push(`DELETE ${path}`);
    return {} as T;
  }
}

const settle = () => new Promise(resolve => setTimeout(resolve, 0));

describe('SidebarModel', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('refreshes while visible and never while hidden', async () => {
    const server = new FakeServer();
    const model = new SidebarModel(server, '0.1.0', 5000);
    vi.advanceTimersByTime(20000);
    expect(server.calls).toEqual([]);
    model.setVisible(true);
    await settle();
    expect(server.calls).toEqual(['GET version', 'GET summary?models=50&jobs=30']);
    expect(model.summary).toEqual(SUMMARY);
    vi.advanceTimersByTime(5000);
    await settle();
    expect(server.calls.filter(c => c.startsWith('GET summary'))).toHaveLength(2);
    model.setVisible(false);
    expect(model.polling).toBe(false);
    vi.advanceTimersByTime(60000);
    await settle();
    expect(server.calls.filter(c => c.startsWith('GET summary'))).toHaveLength(2);
    model.dispose();
  });

  it('emits changed after each refresh', async () => {
    const model = new SidebarModel(new FakeServer(), '0.1.0');
    let changes = 0;
    model.changed.connect(() => changes++);
    await model.refresh();
    expect(changes).toBeGreaterThanOrEqual(2); // version checked, summary loaded
    expect(model.refreshedAt).not.toBeNull();
  });

  it('warns when the server extension differs or is missing', async () => {
    const server = new FakeServer();
    server.version = '0.2.0';
    const model = new SidebarModel(server, '0.1.0');
    await model.refresh();
    expect(model.versionWarning).toContain('(0.1.0) and the server extension (0.2.0)');
    const missing = new FakeServer();
    missing.fail = { status: 404, message: 'Not Found' };
    const lonely = new SidebarModel(missing, '0.1.0');
    await lonely.refresh();
    expect(lonely.versionWarning).toContain('not answering');
    expect(lonely.summary).toBeNull();
  });

  it('keeps the server error to show', async () => {
    const server = new FakeServer();
    const model = new SidebarModel(server, '0.1.0');
    await model.refresh();
    server.fail = { status: 500, message: 'The store is locked; try again.' };
    await model.refresh();
    expect(model.error).toBe('The store is locked; try again.');
    expect(model.summary).toEqual(SUMMARY); // the last good data stays on screen
  });

  it('sends each action to its route, then refreshes', async () => {
    const server = new FakeServer();
    const model = new SidebarModel(server, '0.1.0');
    await model.promote('churn', 'production', 3, 'better recall');
    await model.deploy('churn@production');
    await model.stop('d-12');
    await model.restart('d-12');
    await model.archive('churn', 1, 'old');
    await model.checkNow('churn');
    await model.retrainNow('churn');
    await model.setPolicyEnabled('churn', false);
    await model.retrain('churn', {
      data: { df: 'churn_train@latest' },
      gate: ['metrics.accuracy >= champion.metrics.accuracy'],
      holdout: null,
      target: null,
      promote: 'production'
    });
    const posts = server.calls.filter(c => c.startsWith('POST'));
    expect(posts).toEqual([
      'POST models/churn/aliases {"alias":"production","version":3,"reason":"better recall"}',
      'POST deployments {"reference":"churn@production"}',
      'POST deployments/d-12/stop {}',
      'POST deployments/d-12/restart {}',
      'POST models/churn/versions/1/archive {"reason":"old"}',
      'POST monitoring/churn/check {}',
      'POST retraining/jobs {"model":"churn"}',
      'POST retraining/policies/churn/disable {}',
      'POST retraining/jobs {"model":"churn","data":{"df":"churn_train@latest"},"gate":["metrics.accuracy >= champion.metrics.accuracy"],"holdout":null,"target":null,"promote":"production"}'
    ]);
    expect(server.calls.filter(c => c.startsWith('GET summary'))).toHaveLength(9);
    expect(model.busy.size).toBe(0);
  });

  it('refreshes afresh after an action even when a refresh was already on its way', async () => {
    const server = new FakeServer();
    const model = new SidebarModel(server, '0.1.0');
    await model.refresh(); // version checked
    // A refresh starts before the action and answers with the data of before it.
    let answer!: (s: ISummary) => void;
    const stale = { ...SUMMARY, policies: [] };
    const fresh = { ...SUMMARY, jobs: { ...SUMMARY.jobs, total: 1 } };
    server.get = async <T>(path: string): Promise<T> => {
      server.calls.push(`GET ${path}`);
      return new Promise<T>(resolve => {
        answer = s => resolve(s as T);
      });
    };
    const before = model.refresh();
    const holdStale = answer;
    const acting = model.retrainNow('churn');
    await settle();
    holdStale(stale); // the early refresh ends after the action: its data is stale
    await before;
    await settle();
    expect(server.calls.filter(c => c.startsWith('GET summary'))).toHaveLength(3);
    answer(fresh);
    await acting;
    expect(model.summary).toEqual(fresh);
  });

  it("asks for a model's retrain defaults without changing anything", async () => {
    const server = new FakeServer();
    const model = new SidebarModel(server, '0.1.0');
    await model.retrainDefaults('my model');
    expect(server.calls).toEqual(['GET retraining/defaults/my%20model']);
    expect(model.busy.size).toBe(0);
  });

  it('shows more models and jobs on request, and keeps them across refreshes', async () => {
    const server = new FakeServer();
    const model = new SidebarModel(server, '0.1.0');
    await model.showMore('models');
    await model.showMore('jobs');
    await model.refresh();
    expect(server.calls.filter(c => c.startsWith('GET summary')).slice(-1)).toEqual([
      'GET summary?models=100&jobs=60'
    ]);
  });
});
