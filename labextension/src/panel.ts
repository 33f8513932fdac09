/**
 * The "MLOps" left sidebar: Models, Deployments, Monitoring and Retraining sections drawn
 * from the model's summary, with their actions. Destructive actions ask first; every
 * action says how it went in a notification.
 */

import {
  Clipboard,
  Dialog,
  InputDialog,
  Notification,
  showDialog
} from '@jupyterlab/apputils';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import {
  IBadge,
  IDeployment,
  IJob,
  IModelItem,
  IMonitoringItem,
  IPolicy,
  IRetrainDefaults,
  IRetrainForm,
  Section,
  deployReference,
  deploymentDriftBadge,
  driftBadge,
  emptyText,
  esc,
  formatNumber,
  jobBadge,
  plural,
  rejectionLine,
  relativeTime,
  retrainForm,
  retrainOptions,
  showsMessage,
  statusBadge
} from './format';
import { SidebarModel } from './model';

/** Opens a notebook showing ``mlops.monitor(reference)`` (wired by the plugin). */
export type OpenMonitor = (reference: string) => Promise<void>;

function badge(b: IBadge): string {
  return `<span class="jp-mlops-badge jp-mlops-${b.level}">${esc(b.text)}</span>`;
}

function button(action: string, args: Record<string, string | number>, label: string, title: string, busy = false): string {
  const data = Object.entries(args)
    .map(([k, v]) => `data-${k}="${esc(v)}"`)
    .join(' ');
  return `<button class="jp-mlops-button" data-action="${action}" ${data} title="${esc(title)}"${busy ? ' disabled' : ''}>${busy ? '…' : esc(label)}</button>`;
}

/** The retrain form: what a retraining without a policy does, filled from the model's defaults. */
class RetrainForm extends Widget implements Dialog.IBodyWidget<IRetrainForm> {
  constructor(defaults: IRetrainDefaults) {
    super();
    this.addClass('jp-mlops-retrain-form');
    const v = retrainForm(defaults);
    const champion = defaults.champion_alias
      ? `${defaults.champion} (${defaults.champion_alias})`
      : defaults.champion;
    const field = (name: keyof IRetrainForm, label: string, help: string, rows = 0) =>
      `<label class="jp-mlops-field"><span>${esc(label)}</span>` +
      (rows
        ? `<textarea name="${name}" rows="${rows}" spellcheck="false">${esc(v[name])}</textarea>`
        : `<input name="${name}" value="${esc(v[name])}" spellcheck="false">`) +
      `<small class="jp-mlops-muted">${esc(help)}</small></label>`;
    this.node.innerHTML =
      `<p class="jp-mlops-muted">${esc(defaults.model)} has no retraining policy: this job replays the run of ${esc(champion)} on the data below, registers the challenger and moves the alias if the gate passes.</p>` +
      field('data', 'Data', 'One "input = data reference" per line (the run\'s inputs at @latest).', 3) +
      field('gate', 'Gate', 'One check per line, e.g. accuracy >= champion (needs a holdout) or metrics.NAME >= champion.metrics.NAME.', 3) +
      field('holdout', 'Holdout', 'A data version both models are scored on (optional).') +
      field('target', 'Target', "The holdout's label column (optional).") +
      field('promote', 'Promote', 'The alias to move if the gate passes (empty: register only).');
  }

  getValue(): IRetrainForm {
    const value = (name: keyof IRetrainForm) =>
      (this.node.querySelector(`[name="${name}"]`) as HTMLInputElement | HTMLTextAreaElement | null)?.value ?? '';
    return {
      data: value('data'),
      gate: value('gate'),
      holdout: value('holdout'),
      target: value('target'),
      promote: value('promote')
    };
  }
}

export class MlopsSidebar extends Widget {
  constructor(
    readonly model: SidebarModel,
    private readonly openMonitor: OpenMonitor
  ) {
    super();
    this.id = 'jupyter-mlops-sidebar';
    this.addClass('jp-mlops-sidebar');
    this.title.caption = 'MLOps: models, deployments, monitoring, retraining';
    this.node.addEventListener('click', event => void this.onClick(event));
    model.changed.connect(() => this.render(), this);
    this.render();
  }

  protected onAfterShow(msg: Message): void {
    this.model.setVisible(true);
  }

  protected onAfterHide(msg: Message): void {
    this.model.setVisible(false);
  }

  protected onAfterAttach(msg: Message): void {
    if (this.isVisible) {
      this.model.setVisible(true);
    }
  }

  protected onBeforeDetach(msg: Message): void {
    this.model.setVisible(false);
  }

  /** Draw the whole panel from the model (small: pages of at most 50 items). */
  render(): void {
    const m = this.model;
    const s = m.summary;
    const scroll = this.node.scrollTop;
    const banner = [m.versionWarning, m.error]
      .filter(Boolean)
      .map(text => `<div class="jp-mlops-banner">${esc(text)}</div>`)
      .join('');
    const header =
      '<div class="jp-mlops-header"><span class="jp-mlops-title">MLOps</span>' +
      `<span class="jp-mlops-muted" title="${esc(m.store ?? '')}">${m.refreshedAt ? 'updated ' + esc(relativeTime(m.refreshedAt)) : 'loading…'}</span>` +
      button('refresh', {}, 'Refresh', 'Refresh now') +
      '</div>';
    const body = s
      ? this.section('models', `Models (${s.models.total})`, [
          ...s.models.items.map(x => this.modelRow(x)),
          this.more('models', s.models.total - s.models.items.length)
        ]) +
        this.section('deployments', `Deployments (${s.deployments.length})`, s.deployments.map(x => this.deploymentRow(x))) +
        this.section('monitoring', 'Monitoring', s.monitoring.map(x => this.monitoringRow(x))) +
        this.section(
          'retraining',
          `Retraining (${plural(s.jobs.total, 'job')})`,
          [
            ...s.policies.map(x => this.policyRow(x)),
            ...s.jobs.items.map(x => this.jobRow(x)),
            this.more('jobs', s.jobs.total - s.jobs.items.length)
          ]
        )
      : '';
    this.node.innerHTML = header + banner + body;
    this.node.scrollTop = scroll;
  }

  /** A "Show more" row when the page holds fewer items than there are. */
  private more(section: 'models' | 'jobs', hidden: number): string {
    return hidden > 0
      ? `<div class="jp-mlops-row jp-mlops-more">${button('more', { section }, `Show more (${hidden} not shown)`, 'Load the next page')}</div>`
      : '';
  }

  private section(name: Section, title: string, items: string[]): string {
    const rows = items.filter(Boolean);
    const content = rows.length
      ? rows.join('')
      : `<div class="jp-mlops-empty">${esc(emptyText(name))}</div>`;
    return `<section class="jp-mlops-section" data-section="${name}"><h3>${esc(title)}</h3>${content}</section>`;
  }

  private modelRow(x: IModelItem): string {
    const busy = this.model.busy;
    const hasPolicy = (this.model.summary?.policies ?? []).some(p => p.model === x.name);
    const aliases = Object.entries(x.aliases ?? {})
      .map(([alias, v]) => `<span class="jp-mlops-chip">${esc(alias)} → v${v}</span>`)
      .join('');
    const metrics = Object.entries(x.metrics ?? {})
      .slice(0, 3)
      .map(([k, v]) => `${esc(k)} ${esc(formatNumber(v))}`)
      .join(' · ');
    return (
      `<div class="jp-mlops-row" data-model-row="${esc(x.name)}">` +
      `<div class="jp-mlops-line"><b>${esc(x.name)}</b><span class="jp-mlops-muted">v${x.latest_version ?? '—'} · ${plural(x.versions, 'version')}</span></div>` +
      `<div class="jp-mlops-line">${aliases}<span class="jp-mlops-muted">${metrics}</span></div>` +
      '<div class="jp-mlops-actions">' +
      button('promote', { model: x.name, latest: x.latest_version ?? 0 }, 'Promote…', 'Move an alias to a version, with a reason', busy.has(`promote:${x.name}`)) +
      button('deploy', { ref: deployReference(x) }, 'Deploy', `Serve ${deployReference(x)}`, busy.has(`deploy:${x.name}`)) +
      (hasPolicy
        ? button('retrain', { model: x.name, policy: 1 }, 'Retrain', 'Retrain now with its policy', busy.has(`retrain:${x.name}`))
        : button('retrain', { model: x.name, policy: 0 }, 'Retrain…', "Retrain now: a form with the model's defaults (it has no policy)", busy.has(`retrain:${x.name}`))) +
      button('archive', { model: x.name, latest: x.latest_version ?? 0 }, 'Archive…', 'Archive a version', busy.has(`archive:${x.name}`)) +
      '</div></div>'
    );
  }

  private deploymentRow(d: IDeployment): string {
    const busy = this.model.busy;
    const ref = `${d.model}@${d.version ?? '?'}`;
    return (
      `<div class="jp-mlops-row" data-deployment-row="${esc(d.deployment_id)}">` +
      `<div class="jp-mlops-line"><b>${esc(ref)}</b>${badge(statusBadge(d.status))}${badge(deploymentDriftBadge(d))}</div>` +
      `<div class="jp-mlops-line jp-mlops-muted">${esc(d.reference)} · <span class="jp-mlops-url">${esc(d.url ?? '')}</span></div>` +
      `<div class="jp-mlops-line jp-mlops-muted">${esc(plural(d.requests, 'request'))} · p50 ${d.p50_ms === null ? '—' : esc(formatNumber(d.p50_ms)) + ' ms'}</div>` +
      (showsMessage(d) ? `<div class="jp-mlops-line jp-mlops-muted">${esc(d.message)}</div>` : '') +
      '<div class="jp-mlops-actions">' +
      button('stop', { id: d.deployment_id, ref }, 'Stop', 'Stop serving', busy.has(`stop:${d.deployment_id}`)) +
      button('restart', { id: d.deployment_id }, 'Restart', 'Stop and start again', busy.has(`restart:${d.deployment_id}`)) +
      button('curl', { id: d.deployment_id }, 'Copy curl', 'Copy a curl example') +
      button('monitor', { ref: d.reference }, 'Monitor', 'Open the monitoring panel in a new notebook') +
      '</div></div>'
    );
  }

  private monitoringRow(x: IMonitoringItem): string {
    const check = x.last_check;
    const refused = rejectionLine(check);
    const alerts = x.alerts
      .slice(0, 3)
      .map(a => `<li>${esc(a.kind)}: ${esc(a.message)}</li>`)
      .join('');
    return (
      `<div class="jp-mlops-row" data-monitor-row="${esc(x.model)}">` +
      `<div class="jp-mlops-line"><b>${esc(x.model)}</b>${badge(driftBadge(check))}${x.alerts.length ? badge({ text: `${x.alerts.length} alert${x.alerts.length === 1 ? '' : 's'}`, level: 'error' }) : ''}</div>` +
      `<div class="jp-mlops-line jp-mlops-muted">last check ${esc(relativeTime(check?.time ?? null))}${check ? ` · ${formatNumber(check.rows)} rows` : ''}</div>` +
      (refused ? `<div class="jp-mlops-line jp-mlops-muted" data-rejections>${esc(refused)}</div>` : '') +
      (alerts ? `<ul class="jp-mlops-alerts">${alerts}</ul>` : '') +
      '<div class="jp-mlops-actions">' +
      button('check', { model: x.model }, 'Check now', 'Evaluate the monitor now', this.model.busy.has(`check:${x.model}`)) +
      '</div></div>'
    );
  }

  private policyRow(p: IPolicy): string {
    return (
      `<div class="jp-mlops-row" data-policy-row="${esc(p.model)}">` +
      `<div class="jp-mlops-line"><b>${esc(p.model)}</b> policy ${badge({ text: p.enabled ? 'enabled' : 'paused', level: p.enabled ? 'ok' : 'muted' })}</div>` +
      `<div class="jp-mlops-line jp-mlops-muted">on ${esc(p.on)}${p.schedule ? ` · ${esc(p.schedule)}` : ''}${p.gate ? ` · gate ${esc(p.gate)}` : ''}</div>` +
      '<div class="jp-mlops-actions">' +
      button('policy', { model: p.model, enable: p.enabled ? 0 : 1 }, p.enabled ? 'Pause' : 'Resume', p.enabled ? 'Pause the policy' : 'Resume the policy', this.model.busy.has(`policy:${p.model}`)) +
      button('retrain', { model: p.model }, 'Retrain now', 'Start a job now', this.model.busy.has(`retrain:${p.model}`)) +
      '</div></div>'
    );
  }

  private jobRow(j: IJob): string {
    const lines = (j.gate?.lines ?? [])
      .map(l => `<li class="jp-mlops-gate-${esc(l.status.toLowerCase())}">${esc(l.status)} ${esc(l.check)}${l.detail ? ` <span class="jp-mlops-muted">(${esc(l.detail)})</span>` : ''}</li>`)
      .join('');
    return (
      `<div class="jp-mlops-row jp-mlops-job" data-job-row="${esc(j.job_id)}">` +
      `<div class="jp-mlops-line"><b>${esc(j.model)}</b> ${esc(j.kind)} ${badge(jobBadge(j))}<span class="jp-mlops-muted">${esc(relativeTime(j.created))}</span></div>` +
      `<div class="jp-mlops-line jp-mlops-muted">${esc(j.trigger)}${j.champion || j.challenger ? ` · ${esc(j.champion ?? 'no champion')} → ${esc(j.challenger ?? '…')}` : ''}</div>` +
      (j.error ? `<div class="jp-mlops-line jp-mlops-error-text">${esc(j.error)}</div>` : '') +
      (lines ? `<ul class="jp-mlops-gate">${lines}</ul>` : '') +
      '</div>'
    );
  }

  private async onClick(event: MouseEvent): Promise<void> {
    const target = (event.target as HTMLElement).closest('button[data-action]') as HTMLButtonElement | null;
    if (!target) {
      return;
    }
    const d = target.dataset;
    try {
      switch (d.action) {
        case 'refresh':
          await this.model.refresh();
          break;
        case 'more':
          await this.model.showMore(d.section === 'jobs' ? 'jobs' : 'models');
          break;
        case 'deploy':
          await this.model.deploy(d.ref!);
          Notification.success(`Deployed ${d.ref}`, { autoClose: 4000 });
          break;
        case 'promote':
          await this.promote(d.model!, Number(d.latest));
          break;
        case 'archive':
          await this.archive(d.model!, Number(d.latest));
          break;
        case 'retrain':
          await this.retrain(d.model!, d.policy === undefined ? true : d.policy === '1');
          break;
        case 'stop':
          if (await this.confirm(`Stop ${d.ref}?`, 'Clients calling it will get errors until it is deployed again.', 'Stop')) {
            await this.model.stop(d.id!);
            Notification.success(`Stopped ${d.ref}`, { autoClose: 4000 });
          }
          break;
        case 'restart':
          if (await this.confirm('Restart this deployment?', 'It stops and starts again on the same port.', 'Restart')) {
            await this.model.restart(d.id!);
          }
          break;
        case 'curl': {
          const dep = this.model.summary?.deployments.find(x => x.deployment_id === d.id);
          if (dep) {
            Clipboard.copyToSystem(dep.curl);
            Notification.info('curl example copied', { autoClose: 3000 });
          }
          break;
        }
        case 'monitor':
          await this.openMonitor(d.ref!);
          break;
        case 'check':
          await this.model.checkNow(d.model!);
          break;
        case 'policy':
          await this.model.setPolicyEnabled(d.model!, d.enable === '1');
          break;
      }
    } catch (error: any) {
      Notification.error(String(error?.message ?? error), { autoClose: 8000 });
    }
  }

  private async confirm(title: string, body: string, label: string): Promise<boolean> {
    const result = await showDialog({
      title,
      body,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label })]
    });
    return result.button.accept;
  }

  /**
   * Retrain now: with the model's policy when it has one; else through the retrain form,
   * filled with the model's defaults (``hasPolicy`` undefined: ask the server).
   */
  async retrain(model: string, hasPolicy?: boolean): Promise<void> {
    let job: IJob;
    if (hasPolicy === true) {
      job = await this.model.retrainNow(model);
    } else {
      const defaults = await this.model.retrainDefaults(model);
      if (defaults.policy) {
        job = await this.model.retrainNow(model);
      } else {
        const result = await showDialog({
          title: `Retrain ${defaults.model}`,
          body: new RetrainForm(defaults),
          buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Retrain' })]
        });
        if (!result.button.accept || !result.value) {
          return;
        }
        job = await this.model.retrain(defaults.model, retrainOptions(result.value));
      }
    }
    Notification.info(
      job.merged
        ? `Retraining ${model}: merged into the waiting job ${job.job_id.slice(0, 8)}`
        : `Retraining ${model}: job ${job.job_id.slice(0, 8)}`,
      { autoClose: 4000 }
    );
  }

  /** Promote: choose the alias and the version, give a reason, confirm. */
  async promote(model: string, latest: number): Promise<void> {
    const alias = await InputDialog.getText({ title: `Move which alias of ${model}?`, text: 'production' });
    if (!alias.button.accept || !alias.value) {
      return;
    }
    const version = await InputDialog.getNumber({ title: `Point ${model}@${alias.value} at version`, value: latest });
    if (!version.button.accept || version.value === null) {
      return;
    }
    const reason = await InputDialog.getText({ title: `Why move ${model}@${alias.value} to v${version.value}?`, placeholder: 'reason (kept in the audit trail)' });
    if (!reason.button.accept) {
      return;
    }
    await this.model.promote(model, alias.value, version.value, reason.value ?? '');
    Notification.success(`${model}@${alias.value} → v${version.value}`, { autoClose: 4000 });
  }

  /** Archive: choose the version, give a reason, confirm. */
  async archive(model: string, latest: number): Promise<void> {
    const version = await InputDialog.getNumber({ title: `Archive which version of ${model}?`, value: latest });
    if (!version.button.accept || version.value === null) {
      return;
    }
    if (!(await this.confirm(`Archive ${model}@${version.value}?`, 'It leaves listings and @latest; it stays loadable by number.', 'Archive'))) {
      return;
    }
    const reason = await InputDialog.getText({ title: 'Reason', placeholder: 'why (kept in the audit trail)' });
    await this.model.archive(model, version.value, reason.value ?? '');
  }
}
