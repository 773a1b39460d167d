// uPlot is vendored (web/vendor/uPlot.iife.min.js) and loaded before the
// bundle as a global; only what the dashboard uses is typed here.
declare class uPlot {
  constructor(options: any, data: any[], target: HTMLElement);
  setData(data: any[]): void;
  setSize(size: { width: number; height: number }): void;
  setScale(key: string, range: { min: number; max: number }): void;
  destroy(): void;
}
