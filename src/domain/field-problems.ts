import type { z } from 'zod';

/** One thing wrong with a request, as answered in a 400's `issues`. */
export interface FieldProblem {
  path: string;
  message: string;
}

export function fieldProblems(issues: readonly z.core.$ZodIssue[], rootName: string): FieldProblem[] {
  return issues.map((issue) => ({
    path: issue.path.length > 0 ? issue.path.join('.') : rootName,
    message: issue.message,
  }));
}
