import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { MachineInfo } from './machine-info';
import { ThreeWayTable } from './three-way-table';

export interface Figure {
  name: string;
  value: string;
  /** e.g. "≥ 10,000 msg/s"; empty when the issue sets no target for this figure. */
  target?: string;
  /** Undefined when there is no target or it could not be judged. */
  met?: boolean;
}

/**
 * Collects what the run measures (printing each figure at once) and renders the Markdown report: the three-way
 * table, the targets as ratios of the same run, the server-only figures, and the notes.
 */
export class Report {
  private readonly figures: Figure[] = [];
  private readonly targets: Figure[] = [];
  private readonly notes: string[] = [];
  /** What each column is, one line each. */
  readonly contenders: string[] = [];
  readonly threeWay = new ThreeWayTable();
  /** How the three-way rounds ran (order, count, what a cell holds). */
  threeWayHow = '';
  mode = '';

  add(figure: Figure): void {
    this.figures.push(figure);
    console.log(`[bench] ${figure.name}: ${figure.value}${figure.target ? ` (target ${figure.target})` : ''}${verdict(figure)}`);
  }

  target(figure: Figure): void {
    this.targets.push(figure);
    console.log(`[bench] target: ${figure.name}: ${figure.value}${verdict(figure)}`);
  }

  note(text: string): void {
    this.notes.push(text);
    console.log(`[bench] note: ${text}`);
  }

  render(machine: MachineInfo | undefined): string {
    const lines: string[] = ['# Benchmark results', ''];
    if (machine) {
      lines.push(
        `- Date: ${machine.date}`,
        `- CPU: ${machine.cpuModel}, ${machine.cores} cores; RAM ${machine.ramGiB}`,
        `- Node ${machine.node}; ${machine.postgres}`,
      );
    }
    if (this.mode) lines.push(`- Setup: ${this.mode}`);
    for (const contender of this.contenders) lines.push(`- ${contender}`);
    if (this.threeWay.rounds > 0) {
      lines.push('', '## Side by side: raw PostgreSQL, the in-process peer, this server', '');
      if (this.threeWayHow) lines.push(this.threeWayHow, '');
      lines.push(this.threeWay.render());
    }
    if (this.targets.length > 0) {
      lines.push('', '## Targets (ratios of this run)', '', '| target | measured | met |', '|---|---|---|');
      for (const target of this.targets) lines.push(`| ${target.name} | ${target.value} | ${metCell(target)} |`);
    }
    if (this.figures.length > 0) {
      lines.push('', '## This server only', '', '| Figure | Value | Target | Met |', '|---|---|---|---|');
      for (const figure of this.figures) lines.push(`| ${figure.name} | ${figure.value} | ${figure.target ?? ''} | ${metCell(figure)} |`);
    }
    if (this.notes.length > 0) {
      lines.push('', 'Notes:', '');
      for (const note of this.notes) lines.push(`- ${note}`);
    }
    return `${lines.join('\n')}\n`;
  }

  save(machine: MachineInfo | undefined, file: string): string {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, this.render(machine));
    return file;
  }
}

function verdict(figure: Figure): string {
  return figure.met === undefined ? '' : figure.met ? '  [met]' : '  [NOT MET]';
}

function metCell(figure: Figure): string {
  return figure.met === undefined ? '' : figure.met ? 'met' : '**not met**';
}
