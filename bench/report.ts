import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { MachineInfo } from './machine-info';

export interface Figure {
  name: string;
  value: string;
  /** e.g. "≥ 10,000 msg/s"; empty when the issue sets no target for this figure. */
  target?: string;
  /** Undefined when there is no target or it could not be judged. */
  met?: boolean;
}

/** Collects figures as they are measured (printing each at once) and renders the final Markdown report. */
export class Report {
  private readonly figures: Figure[] = [];
  private readonly notes: string[] = [];
  mode = '';

  add(figure: Figure): void {
    this.figures.push(figure);
    const verdict = figure.met === undefined ? '' : figure.met ? '  [meets target]' : '  [MISSES target]';
    console.log(`[bench] ${figure.name}: ${figure.value}${figure.target ? ` (target ${figure.target})` : ''}${verdict}`);
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
    lines.push('', '| Figure | Value | Target | Met |', '|---|---|---|---|');
    for (const figure of this.figures) {
      const met = figure.met === undefined ? '' : figure.met ? 'yes' : '**no**';
      lines.push(`| ${figure.name} | ${figure.value} | ${figure.target ?? ''} | ${met} |`);
    }
    if (this.notes.length > 0) {
      lines.push('', 'Notes:', '');
      for (const note of this.notes) lines.push(`- ${note}`);
    }
    return `${lines.join('\n')}\n`;
  }

  save(machine: MachineInfo | undefined, file = path.join(__dirname, 'results', 'latest.md')): string {
    const text = this.render(machine);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, text);
    return file;
  }
}
