/**
 * The sidebar's state: the latest summary from the server, refreshed while the panel is
 * visible (never while hidden), the version check, and the actions (each followed by a
 * refresh). The HTTP client is injected, so the unit tests drive it with a fake server.
 */

import { ISignal, Signal } from '@lumino/signaling';

import { IJob, IRetrainDefaults, IRetrainOptions, ISummary, versionMessage } from './format';

export interface IClient {
  get<T>(path: string): Promise<T>;
  post<T>(path: string, body?: unknown): Promise<T>;
  del<T>(path: string): Promise<T>;
}

export interface IVersionInfo {
  version: string;
  store: string;
}

const enc = encodeURIComponent;

export class SidebarModel {
  constructor(
    private readonly client: IClient,
    readonly frontendVersion: string,
    readonly interval: number = 5000
  ) {}

  summary: ISummary | null = null;
  error: string | null = null;
  versionWarning: string | null = null;
  store: string | null = null;
  refreshedAt: number | null = null;
  /** How many models and jobs the summary brings (the first pages; "Show more" grows them). */
  readonly limits = { models: 50, jobs: 30 };

  /** Show the next page of models or jobs (kept across refreshes). */
  showMore(section: 'models' | 'jobs'): Promise<void> {
    this.limits[section] = Math.min(this.limits[section] + (section === 'models' ? 50 : 30), 1000);
    return this.refresh();
  }

  /** Actions in flight, by key (e.g. "stop:d-12"), so buttons show they work. */
  readonly busy = new Set<string>();

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get visible(): boolean {
    return this._visible;
  }

  get polling(): boolean {
    return this._timer !== null;
  }

  /** Start refreshing (now, then every ``interval``) when shown; stop when hidden. */
  setVisible(visible: boolean): void {
    if (visible === this._visible) {
      return;
    }
    this._visible = visible;
    if (visible) {
      void this.refresh();
      this._timer = setInterval(() => void this.refresh(), this.interval);
    } else if (this._timer !== null) {
      clearInterval(this._timer);
      this._timer = null;
    }
  }

  /** Ask the server which version it runs (once; again after an error). */
  async checkVersion(): Promise<void> {
    try {
      const info = await this.client.get<IVersionInfo>('version');
      this.store = info.store;
      this.versionWarning = versionMessage(this.frontendVersion, info.version);
    } catch (error: any) {
      this.versionWarning = error?.status === 404 || error?.status === 0 ? versionMessage(this.frontendVersion, null) : null;
      if (!this.versionWarning) {
        this.error = String(error?.message ?? error);
      }
    }
    this._versionChecked = true;
    this._changed.emit();
  }

  /** Fetch the summary (skipped while another refresh is on its way). */
  async refresh(): Promise<void> {
    if (this._inFlight) {
      return this._inFlight;
    }
    this._inFlight = (async () => {
      if (!this._versionChecked || this.versionWarning) {
        await this.checkVersion();
      }
      try {
        const { models, jobs } = this.limits;
        this.summary = await this.client.get<ISummary>(`summary?models=${models}&jobs=${jobs}`);
        this.error = null;
        this.refreshedAt = Date.now() / 1000;
      } catch (error: any) {
        this.error = String(error?.message ?? error);
      } finally {
        this._inFlight = null;
        this._changed.emit();
      }
    })();
    return this._inFlight;
  }

  /**
   * Run an action, then refresh. A refresh already in flight may have started before the
   * action and bring back stale data, so wait for it to end and then fetch afresh (or join
   * a refresh that started after the action, which is fresh).
   */
  private async act<T>(key: string, call: () => Promise<T>): Promise<T> {
    this.busy.add(key);
    this._changed.emit();
    try {
      return await call();
    } finally {
      this.busy.delete(key);
      const stale = this._inFlight;
      if (stale) {
        await stale.catch(() => undefined);
      }
      await this.refresh();
    }
  }

  promote(model: string, alias: string, version: number, reason: string): Promise<unknown> {
    return this.act(`promote:${model}`, () =>
      this.client.post(`models/${enc(model)}/aliases`, { alias, version, reason })
    );
  }

  archive(model: string, version: number, reason: string): Promise<unknown> {
    return this.act(`archive:${model}`, () =>
      this.client.post(`models/${enc(model)}/versions/${version}/archive`, { reason })
    );
  }

  deploy(reference: string): Promise<unknown> {
    return this.act(`deploy:${reference.split('@')[0]}`, () =>
      this.client.post('deployments', { reference })
    );
  }

  stop(deploymentId: string): Promise<unknown> {
    return this.act(`stop:${deploymentId}`, () =>
      this.client.post(`deployments/${enc(deploymentId)}/stop`)
    );
  }

  restart(deploymentId: string): Promise<unknown> {
    return this.act(`restart:${deploymentId}`, () =>
      this.client.post(`deployments/${enc(deploymentId)}/restart`)
    );
  }

  checkNow(model: string): Promise<unknown> {
    return this.act(`check:${model}`, () => this.client.post(`monitoring/${enc(model)}/check`));
  }

  retrainNow(model: string): Promise<IJob> {
    return this.act(`retrain:${model}`, () =>
      this.client.post<IJob>('retraining/jobs', { model })
    );
  }

  /** What a retraining of ``model`` without a policy starts from (the retrain form). */
  retrainDefaults(model: string): Promise<IRetrainDefaults> {
    return this.client.get<IRetrainDefaults>(`retraining/defaults/${enc(model)}`);
  }

  /** Retrain now with the options of the retrain form (no policy needed). */
  retrain(model: string, options: IRetrainOptions): Promise<IJob> {
    return this.act(`retrain:${model}`, () =>
      this.client.post<IJob>('retraining/jobs', { model, ...options })
    );
  }

  setPolicyEnabled(model: string, enabled: boolean): Promise<unknown> {
    return this.act(`policy:${model}`, () =>
      this.client.post(`retraining/policies/${enc(model)}/${enabled ? 'enable' : 'disable'}`)
    );
  }

  logs(deploymentId: string, lines = 50): Promise<{ logs: string }> {
    return this.client.get(`deployments/${enc(deploymentId)}/logs?lines=${lines}`);
  }

  dispose(): void {
    this.setVisible(false);
    Signal.clearData(this);
  }

  private _changed = new Signal<this, void>(this);
  private _visible = false;
  private _timer: ReturnType<typeof setInterval> | null = null;
  private _inFlight: Promise<void> | null = null;
  private _versionChecked = false;
}
