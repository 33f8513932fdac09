/**
 * The jupyter-mlops JupyterLab plugin: the "MLOps" left sidebar (restored with the
 * layout) and command palette entries for its actions.
 */

import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, InputDialog, Notification } from '@jupyterlab/apputils';
import { LabIcon } from '@jupyterlab/ui-components';

import { serverClient } from './api';
import { SidebarModel } from './model';
import { MlopsSidebar } from './panel';

/** Kept equal to package.json's and the Python package's version (a test checks). */
export const FRONTEND_VERSION = '0.1.0';

const ICON_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">' +
  '<g class="jp-icon3" fill="#616161">' +
  '<path d="M12 2 3 7v10l9 5 9-5V7l-9-5zm0 2.3 6.8 3.8L12 11.9 5.2 8.1 12 4.3zM5 9.8l6 3.4v6.6l-6-3.4V9.8zm8 10v-6.6l6-3.4v6.6l-6 3.4z"/>' +
  '</g></svg>';

export const mlopsIcon = new LabIcon({ name: 'jupyter-mlops:icon', svgstr: ICON_SVG });

const COMMANDS = {
  open: 'jupyter-mlops:open',
  refresh: 'jupyter-mlops:refresh',
  deploy: 'jupyter-mlops:deploy',
  promote: 'jupyter-mlops:promote',
  retrain: 'jupyter-mlops:retrain',
  check: 'jupyter-mlops:check',
  monitor: 'jupyter-mlops:monitor'
};

async function openMonitor(app: JupyterFrontEnd, reference: string): Promise<void> {
  const panel: any = await app.commands.execute('notebook:create-new', { kernelName: 'python3' });
  await panel.context.ready;
  const cell = panel.content.activeCell;
  cell.model.sharedModel.setSource(
    `%load_ext jupyter_mlops\nimport jupyter_mlops as mlops\nmlops.monitor(${JSON.stringify(reference)})`
  );
  await panel.sessionContext.ready;
  await app.commands.execute('notebook:run-cell');
}

async function askReference(title: string, placeholder: string): Promise<string | null> {
  const answer = await InputDialog.getText({ title, placeholder });
  return answer.button.accept && answer.value ? answer.value.trim() : null;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-mlops:sidebar',
  description: 'MLOps sidebar: registry, deployments, monitoring and retraining.',
  autoStart: true,
  requires: [ILayoutRestorer],
  optional: [ICommandPalette],
  activate: (app: JupyterFrontEnd, restorer: ILayoutRestorer, palette: ICommandPalette | null) => {
    const model = new SidebarModel(serverClient, FRONTEND_VERSION);
    const sidebar = new MlopsSidebar(model, ref => openMonitor(app, ref));
    sidebar.title.icon = mlopsIcon;
    app.shell.add(sidebar, 'left', { rank: 850 });
    restorer.add(sidebar, 'jupyter-mlops-sidebar');

    const run = async (work: () => Promise<unknown>) => {
      try {
        await work();
      } catch (error: any) {
        Notification.error(String(error?.message ?? error), { autoClose: 8000 });
      }
    };
    app.commands.addCommand(COMMANDS.open, {
      label: 'MLOps: Open the Sidebar',
      execute: () => app.shell.activateById(sidebar.id)
    });
    app.commands.addCommand(COMMANDS.refresh, {
      label: 'MLOps: Refresh',
      execute: () => model.refresh()
    });
    app.commands.addCommand(COMMANDS.deploy, {
      label: 'MLOps: Deploy a Model…',
      execute: () =>
        run(async () => {
          const ref = await askReference('Deploy which model?', 'churn@production');
          if (ref) {
            await model.deploy(ref);
            Notification.success(`Deployed ${ref}`, { autoClose: 4000 });
          }
        })
    });
    app.commands.addCommand(COMMANDS.promote, {
      label: 'MLOps: Promote a Model Version…',
      execute: () =>
        run(async () => {
          const name = await askReference('Promote a version of which model?', 'churn');
          if (name) {
            const item = model.summary?.models.items.find(m => m.name === name);
            await sidebar.promote(name, item?.latest_version ?? 1);
          }
        })
    });
    app.commands.addCommand(COMMANDS.retrain, {
      label: 'MLOps: Retrain a Model Now…',
      execute: () =>
        run(async () => {
          const name = await askReference('Retrain which model?', 'churn');
          if (name) {
            await sidebar.retrain(name); // its policy, else the retrain form
          }
        })
    });
    app.commands.addCommand(COMMANDS.check, {
      label: 'MLOps: Check a Monitor Now…',
      execute: () =>
        run(async () => {
          const name = await askReference('Check the monitor of which model?', 'churn');
          if (name) {
            await model.checkNow(name);
          }
        })
    });
    app.commands.addCommand(COMMANDS.monitor, {
      label: 'MLOps: Open a Monitoring Panel…',
      execute: () =>
        run(async () => {
          const ref = await askReference('Monitor which deployed model?', 'churn@production');
          if (ref) {
            await openMonitor(app, ref);
          }
        })
    });
    if (palette) {
      for (const command of Object.values(COMMANDS)) {
        palette.addItem({ command, category: 'MLOps' });
      }
    }
  }
};

export default plugin;
